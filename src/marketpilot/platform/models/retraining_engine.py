"""DBOS for the retraining workflows: where its state lives per profile, and its lifetime.

- embedded: a SQLite system database, ``HOME/dbos.sqlite``;
- distributed (a PostgreSQL `database_url`): the application database, schema ``dbos``,
  so runs are visible to (and resumable by) every worker and need no extra provisioning.

DBOS keeps one instance per process (``DBOS(config=...)``, ``DBOS.launch()``,
``DBOS.destroy()``). :func:`engine` owns that lifetime for a block of code, and leaves an
instance launched by someone else alone.

**Executor ids.** On launch DBOS resumes the interrupted runs *of its executor id*. Two live
processes with the same id would each resume the other's in-flight runs, so every
long-lived process needs its own stable id: the worker uses ``worker`` (set
``DBOS__VMID`` to a stable per-replica name when running several), and `marketpilot train`
uses ``cli-<host>`` (:func:`cli_executor_id`), so a CLI run killed half-way is finished by
the next `marketpilot train` on that host.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dbos import DBOS, DBOSConfig

from marketpilot.platform.config import Settings
from marketpilot.platform.models import retraining
from marketpilot.platform.models.training import DataSource

__all__ = ["cli_executor_id", "dbos_config", "engine", "launch", "shutdown", "system_database_url"]

log = logging.getLogger(__name__)

APP_NAME = "marketpilot"
SYSTEM_SCHEMA = "dbos"
WORKER_EXECUTOR_ID = "worker"

_launched_here = False
_lock = threading.Lock()


def system_database_url(settings: Settings) -> str:
    """DBOS's system database for `settings` (see the module docstring)."""
    if settings.db_url.startswith("postgresql"):
        return settings.db_url
    return f"sqlite:///{(settings.home / 'dbos.sqlite').resolve()}"


def cli_executor_id() -> str:
    return f"cli-{socket.gethostname()}"


def dbos_config(
    settings: Settings, *, executor_id: str | None = None, polling_interval: float | None = None
) -> DBOSConfig:
    """The DBOS configuration of `settings`. `polling_interval` (seconds) shortens DBOS's
    notification and schedule polling, for tests; the defaults suit production."""
    if not settings.is_distributed:
        settings.home.mkdir(parents=True, exist_ok=True)
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": system_database_url(settings),
        "dbos_system_schema": SYSTEM_SCHEMA,
        "log_level": "DEBUG" if settings.log_level == "debug" else "WARNING",
        "executor_id": executor_id or os.environ.get("DBOS__VMID") or WORKER_EXECUTOR_ID,
    }
    if polling_interval is not None:
        config["notification_listener_polling_interval_sec"] = polling_interval
        config["scheduler_polling_interval_sec"] = polling_interval
    return config


def launch(
    source: DataSource | Settings,
    *,
    executor_id: str | None = None,
    dequeue: bool = True,
    queue_polling_interval: float = 1.0,
    polling_interval: float | None = None,
) -> None:
    """Bind the retraining steps to `source`, launch DBOS (which resumes this executor's
    interrupted runs) and declare the retraining queue: one run at a time in the whole
    deployment, because training is CPU-heavy and runs of one model must not race.

    With `dequeue` False this process runs only what it starts itself, never queued runs
    (drift- and schedule-triggered): a short-lived CLI process must not pick up a run it
    would abandon when it exits.
    """
    global _launched_here
    settings = source if isinstance(source, Settings) else source.settings
    with _lock:
        if _launched_here:
            raise RuntimeError("DBOS is already launched by this process; call shutdown() first")
        retraining.bind(source)
        try:
            DBOS(config=dbos_config(settings, executor_id=executor_id, polling_interval=polling_interval))
            if not dequeue:
                DBOS.listen_queues([])
            DBOS.launch()
            DBOS.register_queue(
                retraining.QUEUE, global_concurrency=1, polling_interval_sec=queue_polling_interval,
                on_conflict="always_update",
            )
        except BaseException:
            DBOS.destroy()
            retraining.unbind()
            raise
        _launched_here = True


def shutdown(*, grace_seconds: int = 0) -> None:
    """Destroy the DBOS instance :func:`launch` created, after waiting up to `grace_seconds`
    for runs in flight, and release the retraining steps' database and registry.

    A run still going after the grace period stays PENDING in the system database and is
    resumed by the next launch with this executor id; its steps keep their database until
    the process exits rather than fail half-way (a failed step would end the run for good).
    """
    global _launched_here
    with _lock:
        if not _launched_here:
            return
        DBOS.destroy(workflow_completion_timeout_sec=grace_seconds)
        _launched_here = False
        in_flight = retraining.runs_in_flight()
        if in_flight:
            log.warning("retraining: %d run(s) still in flight at shutdown; they resume at the next launch", in_flight)
        else:
            retraining.unbind()


@contextmanager
def engine(source: DataSource | Settings, *, executor_id: str | None = None, dequeue: bool = True) -> Iterator[None]:
    """DBOS launched for the block, unless this process launched it already (then reused)."""
    with _lock:
        already = _launched_here
    if already:
        yield
        return
    launch(source, executor_id=executor_id, dequeue=dequeue)
    try:
        yield
    finally:
        shutdown()
