"""One writer at a time on an embedded (SQLite) database file, handed over without sleeping.

SQLite lets one transaction write at a time; a writer that finds the lock taken waits in
SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ms... between attempts. Writers
here hold the lock for well under a millisecond, so under load they mostly sleep past the
moment it was freed: in the order stream's two-worker benchmark a py-spy profile found the
order threads 64% of their time in those sleeps (the app database's ``BEGIN IMMEDIATE`` and
DBOS's first write of a transaction), with both cores a quarter idle. Python's sqlite3 has no
busy-handler hook, so the wait moves in front of the write transaction:

- threads of one process queue on a lock, which wakes the next one as soon as it is free;
- processes sharing the file take an advisory ``flock`` on ``<database>.writer`` (released by
  the kernel if the holder dies); only the thread at the head of its process's queue waits
  for it, polling every 0.1 ms up to 1 ms.

The gate is taken by a connection's cursor when a write transaction starts (``BEGIN
IMMEDIATE``, or a data-changing statement outside a transaction, where pysqlite begins one
itself) and given back after its commit or rollback. Both waits end with `TimeoutError`
after 30 s, SQLite's own busy timeout here. Writers that do not pass through a gated
connection (tools, migrations) are still serialised by SQLite itself.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Self

TIMEOUT_S = 30.0
_FIRST_POLL_S, _LONGEST_POLL_S = 0.0001, 0.001
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")
_GATES: weakref.WeakValueDictionary[Path, WriterGate] = weakref.WeakValueDictionary()
_GATES_LOCK = threading.Lock()


def gate_for(database: Path) -> WriterGate:
    """The process's gate of a database file: every engine on the file shares it, so their
    writers queue on one lock rather than meeting at the file lock."""
    path = database.resolve()
    with _GATES_LOCK:
        gate = _GATES.get(path)
        if gate is None:
            gate = _GATES[path] = WriterGate(path)
        return gate


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork() stays held forever in the child: start over.
    global _GATES_LOCK
    _GATES_LOCK = threading.Lock()
    for gate in list(_GATES.values()):
        gate._lock = threading.Lock()
        gate._fd = None


class WriterGate:
    """The turn to write one database file, for this process's connections to it."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".writer")
        # A plain lock, not an RLock: a connection may be rolled back (and so give its turn
        # back) on another thread than the one that began its transaction.
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        if not self._lock.acquire(timeout=TIMEOUT_S):
            raise TimeoutError(f"no turn to write {self.path.stem} within {TIMEOUT_S:.0f} s")
        try:
            self._lock_file()
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _file(self) -> int:
        # A forked child must not share the parent's open file (and so its lock): reopen.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def _lock_file(self) -> None:
        fd = self._file()
        deadline = time.monotonic() + TIMEOUT_S
        wait = _FIRST_POLL_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"another process kept {self.path.stem} for {TIMEOUT_S:.0f} s") from None
            time.sleep(wait)
            wait = min(wait * 2, _LONGEST_POLL_S)

    def connection_factory(self) -> type[sqlite3.Connection]:
        """A `sqlite3.Connection` class (``connect_args={"factory": ...}``) whose write
        transactions take their turn at this gate."""
        gate = self

        class GatedCursor(sqlite3.Cursor):
            def execute(self, sql: str, parameters: Any = (), /) -> Self:
                connection = self.connection
                assert isinstance(connection, GatedConnection)
                connection.before(sql)
                return super().execute(sql, parameters)

            def executemany(self, sql: str, seq_of_parameters: Any, /) -> Self:
                connection = self.connection
                assert isinstance(connection, GatedConnection)
                connection.before(sql)
                return super().executemany(sql, seq_of_parameters)

        class GatedConnection(sqlite3.Connection):
            holding = False

            def before(self, sql: str) -> None:
                if self.holding:
                    return
                head = sql.lstrip()[:15].upper()
                if head.startswith("BEGIN IMMEDIATE") or (not self.in_transaction and head.startswith(_WRITES)):
                    gate.acquire()
                    self.holding = True

            def _give_back(self) -> None:
                if self.holding and not self.in_transaction:
                    self.holding = False
                    gate.release()

            def cursor(self, factory: Any = GatedCursor) -> Any:
                return super().cursor(factory)

            def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
                self.before(sql)
                return super().execute(sql, parameters)

            def commit(self) -> None:
                try:
                    super().commit()
                finally:
                    self._give_back()

            def rollback(self) -> None:
                try:
                    super().rollback()
                finally:
                    self._give_back()

            def close(self) -> None:
                try:
                    super().close()
                finally:
                    if self.holding:
                        self.holding = False
                        gate.release()

        return GatedConnection

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


os.register_at_fork(after_in_child=_after_fork_in_child)
