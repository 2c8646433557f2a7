"""Shared fixtures. `database_url` runs a test on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from marketpilot.platform.db import Database  # noqa: E402
from support.services import ensure_redis, postgres_database, tansu_broker  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'marketpilot.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'marketpilot.db'}"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with tansu_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url() -> str:
    ensure_redis()
    return "redis://127.0.0.1:6379/0"


_exit_status: list[int] = [0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status[0] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave even if a library thread outlives its test.

    A DBOS executor thread awaiting a workflow result retries forever once its test's
    PostgreSQL database is dropped, and the interpreter joins such threads at exit, so the run
    would never end. The summary is already printed here; name the threads and exit with the
    session's status instead of waiting on them.
    """
    lingering = [t.name for t in threading.enumerate()
                 if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if lingering:
        sys.stderr.write(f"pytest: not waiting for {len(lingering)} thread(s) still running at exit: "
                         f"{', '.join(sorted(lingering)[:10])}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[0])
