"""The process's one DBOS instance: where durable workflow state lives, and its lifetime.

DBOS keeps exactly one instance per process (``DBOS(config=...)``, ``DBOS.launch()``,
``DBOS.destroy()``), yet several capabilities run durable workflows on it (retraining in
`platform.models`, the order / onboarding / dispute workflows in `workflows/`). So no
capability launches DBOS for itself: each *joins* this module with a :class:`Participant`
(what its steps must be bound to before launch, and the queues it needs), and whoever owns
the process (the worker, a CLI command, a test) calls :func:`launch` once.

Where the state lives, per profile:

- embedded: a SQLite system database, ``HOME/dbos.sqlite``;
- distributed (a PostgreSQL `database_url`): the application database, schema ``dbos``,
  so runs are visible to (and resumable by) every worker and need no extra provisioning.

**Executor ids.** On launch DBOS resumes the interrupted runs *of its executor id*. Two live
processes with the same id would each resume the other's in-flight runs, so every
long-lived process needs its own stable id: the worker uses ``worker`` (set ``DBOS__VMID``
to a stable per-replica name when running several), short-lived CLI commands use
``cli-<host>`` (:func:`cli_executor_id`).

**Application version.** DBOS only resumes runs of its own application version, which it
derives from the source of every registered workflow. A process must therefore import the
same workflow modules as the one it takes over from; the worker imports all of them.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, DBOSConfig
from sqlalchemy import event

from marketpilot.platform.config import Settings
from marketpilot.platform.db.writer_gate import gate_for

__all__ = [
    "APP_NAME",
    "SYSTEM_SCHEMA",
    "WORKER_EXECUTOR_ID",
    "Participant",
    "QueueSpec",
    "cli_executor_id",
    "client",
    "dbos_config",
    "engine",
    "has_joined",
    "is_launched",
    "join",
    "launch",
    "shutdown",
    "system_database_url",
]

log = logging.getLogger(__name__)

APP_NAME = "marketpilot"
SYSTEM_SCHEMA = "dbos"
WORKER_EXECUTOR_ID = "worker"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A DBOS queue a capability needs. `global_concurrency` bounds runs across every worker,
    `worker_concurrency` runs per process; None means no bound."""

    name: str
    global_concurrency: int | None = None
    worker_concurrency: int | None = None
    polling_interval: float = 1.0


@dataclass(slots=True)
class Participant:
    """One capability's part in the process's DBOS instance.

    `bind` runs before ``DBOS.launch()`` (launching resumes interrupted runs at once, and
    their steps need their database); `unbind` after ``DBOS.destroy()`` unless
    `in_flight` still reports runs executing (they stay PENDING and resume at the next
    launch; their steps keep their resources until the process exits).
    """

    name: str
    bind: Callable[[], None] | None = None
    unbind: Callable[[], None] | None = None
    in_flight: Callable[[], int] | None = None
    queues: tuple[QueueSpec, ...] = field(default_factory=tuple)


_participants: dict[str, Participant] = {}
_launched = False
_engine: sa.Engine | None = None
_lock = threading.RLock()


def system_database_url(settings: Settings) -> str:
    """DBOS's system database for `settings` (see the module docstring)."""
    if settings.db_url.startswith("postgresql"):
        return settings.db_url
    return f"sqlite:///{_system_database_file(settings)}"


def _system_database_file(settings: Settings) -> Path:
    return (settings.home / "dbos.sqlite").resolve()


def _ensure_wal(path: Path) -> None:
    """Put a SQLite system database in WAL mode, creating the file, before anything else
    opens it. WAL is a property of the file, and switching a file that other connections are
    using takes its exclusive lock: a worker switching it while another process was in the
    middle of DBOS's migrations (DBOS's own engine creates the file with a rollback journal)
    deadlocked the two until the 30 s busy timeout. Done first, on a connection holding
    nothing else, the switch only waits its turn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _sqlite_system_engine(path: Path) -> sa.Engine:
    """The embedded system database with the app database's durability settings.

    DBOS's own SQLite engine keeps SQLite's defaults (rollback journal, synchronous FULL:
    several fsyncs per checkpoint, ~20 ms each on this machine's disk). WAL with synchronous
    NORMAL, like the app database, survives a killed process (every committed checkpoint is
    in the WAL) and only risks the last commits on power loss. Writers still take the lock
    up front (BEGIN IMMEDIATE), as DBOS requires.
    """
    _ensure_wal(path)
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30,
                                                 "factory": gate_for(path).connection_factory()},
                              pool_size=20, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"  # type: ignore[attr-defined]
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
            dbapi_conn.execute(f"PRAGMA {pragma}")  # type: ignore[attr-defined]

    return engine


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
    if not settings.db_url.startswith("postgresql"):
        config["system_database_engine"] = _sqlite_system_engine(_system_database_file(settings))
    if polling_interval is not None:
        config["notification_listener_polling_interval_sec"] = polling_interval
        config["scheduler_polling_interval_sec"] = polling_interval
    return config


def client(settings: Settings) -> DBOSClient:
    """A DBOS client on the system database of `settings`: enqueues, cancels and resumes runs
    from a process that does not launch DBOS itself (the API). The system database is
    created first if no worker has launched yet (enqueued runs wait there for one)."""
    if not settings.is_distributed:
        settings.home.mkdir(parents=True, exist_ok=True)
        _ensure_wal(_system_database_file(settings))
    DBOS.migrate(system_database_url(settings), schema=SYSTEM_SCHEMA)
    return DBOSClient(system_database_url=system_database_url(settings), dbos_system_schema=SYSTEM_SCHEMA)


def join(participant: Participant) -> None:
    """Take part in the next :func:`launch` (a participant of the same name is replaced).

    Joining after launch binds at once and registers the queues, but runs DBOS resumed at
    launch may already have started without the binding: join before launching.
    """
    with _lock:
        _participants[participant.name] = participant
        if _launched:
            log.warning("durable: %s joined after launch; runs resumed at launch did not see it", participant.name)
            if participant.bind is not None:
                participant.bind()
            _register_queues((participant,), None)


def has_joined(name: str) -> bool:
    with _lock:
        return name in _participants


def is_launched() -> bool:
    with _lock:
        return _launched


def launch(
    settings: Settings,
    *,
    executor_id: str | None = None,
    dequeue: bool = True,
    polling_interval: float | None = None,
    queue_polling_interval: float | None = None,
) -> None:
    """Bind every participant, launch DBOS (which resumes this executor's interrupted runs)
    and register every participant's queues.

    With `dequeue` False this process runs only what it starts itself, never queued runs: a
    short-lived CLI process must not pick up a run it would abandon when it exits.
    `queue_polling_interval` overrides every queue's polling interval (tests).
    """
    global _launched, _engine
    with _lock:
        if _launched:
            raise RuntimeError("DBOS is already launched by this process; call shutdown() first")
        participants = tuple(_participants.values())
        bound: list[Participant] = []
        try:
            for participant in participants:
                if participant.bind is not None:
                    participant.bind()
                bound.append(participant)
            config = dbos_config(settings, executor_id=executor_id, polling_interval=polling_interval)
            _engine = config.get("system_database_engine")
            DBOS(config=config)
            if not dequeue:
                DBOS.listen_queues([])
            DBOS.launch()
            _register_queues(participants, queue_polling_interval)
        except BaseException:
            DBOS.destroy()
            _dispose_engine()
            for participant in bound:
                if participant.unbind is not None:
                    participant.unbind()
            _participants.clear()
            raise
        _launched = True


def _register_queues(participants: tuple[Participant, ...], polling_interval: float | None) -> None:
    for participant in participants:
        for queue in participant.queues:
            DBOS.register_queue(
                queue.name,
                global_concurrency=queue.global_concurrency,
                worker_concurrency=queue.worker_concurrency,
                polling_interval_sec=polling_interval if polling_interval is not None else queue.polling_interval,
                on_conflict="always_update",
            )


def shutdown(*, grace_seconds: int = 0) -> None:
    """Destroy the DBOS instance after waiting up to `grace_seconds` for runs in flight, then
    unbind every participant (except those with runs still executing) and forget them all:
    the next launch starts from the participants that join again."""
    global _launched
    with _lock:
        if not _launched:
            return
        DBOS.destroy(workflow_completion_timeout_sec=grace_seconds)
        _dispose_engine()
        _launched = False
        participants = tuple(_participants.values())
        _participants.clear()
        for participant in participants:
            running = participant.in_flight() if participant.in_flight is not None else 0
            if running:
                log.warning("%s: %d run(s) still in flight at shutdown; they resume at the next launch",
                            participant.name, running)
            elif participant.unbind is not None:
                participant.unbind()


def _dispose_engine() -> None:
    """DBOS does not dispose an engine it was given."""
    global _engine
    if _engine is not None:
        _engine.dispose()
        _engine = None


@contextmanager
def engine(
    settings: Settings, *, executor_id: str | None = None, dequeue: bool = True
) -> Iterator[None]:
    """DBOS launched for the block, unless this process launched it already (then reused)."""
    if is_launched():
        yield
        return
    launch(settings, executor_id=executor_id, dequeue=dequeue)
    try:
        yield
    finally:
        shutdown()
