"""The writer gate: write transactions on one SQLite file take turns, reads do not wait,
and a turn is given back on commit, rollback, close and the holder's death."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from marketpilot.platform.db.writer_gate import WriterGate, gate_for


def _connect(gate: WriterGate, path: Path, isolation_level: str | None) -> sqlite3.Connection:
    conn = sqlite3.connect(path, factory=gate.connection_factory(), check_same_thread=False, timeout=30)
    conn.isolation_level = isolation_level
    return conn


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "gate.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # as the app's databases (readers do not wait)
        conn.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
        conn.execute("INSERT INTO counter VALUES (1, 0)")
    return path


def _turn_taken(gate: WriterGate) -> bool:
    """Whether someone holds the gate's file lock (probed through a file of our own)."""
    fd = os.open(gate.path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the probe's lock
    return False


def _in_thread(fn: object) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        fn()  # type: ignore[operator]
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def test_a_second_writer_waits_for_the_first_to_commit_and_a_reader_does_not(db: Path) -> None:
    gate = WriterGate(db)
    first, second, reader = (_connect(gate, db, None) for _ in range(3))
    assert not _turn_taken(gate)
    first.execute("BEGIN IMMEDIATE")
    first.execute("UPDATE counter SET n = n + 1")
    assert _turn_taken(gate)

    def write() -> None:
        second.execute("BEGIN IMMEDIATE")
        second.execute("UPDATE counter SET n = n + 10")
        second.commit()

    _thread, written = _in_thread(write)
    assert not written.wait(0.3), "the second writer went ahead while the first held its turn"
    reader.execute("BEGIN")
    assert reader.execute("SELECT n FROM counter").fetchone() == (0,)  # not blocked, sees the last commit
    reader.rollback()
    first.commit()
    assert written.wait(10), "the second writer never got its turn"
    assert reader.execute("SELECT n FROM counter").fetchone() == (11,)
    assert not _turn_taken(gate)


def test_rollback_and_close_give_the_turn_back(db: Path) -> None:
    gate = WriterGate(db)
    conn = _connect(gate, db, None)
    conn.execute("BEGIN IMMEDIATE")
    assert _turn_taken(gate)
    conn.rollback()
    assert not _turn_taken(gate)
    conn.execute("BEGIN IMMEDIATE")
    conn.close()
    assert not _turn_taken(gate)
    other = _connect(gate, db, None)
    _thread, written = _in_thread(lambda: (other.execute("BEGIN IMMEDIATE"), other.commit()))
    assert written.wait(5), "a closed connection kept the turn"


def test_a_write_outside_a_transaction_takes_the_turn_until_commit(db: Path) -> None:
    """pysqlite's own transactions (isolation_level "IMMEDIATE", as DBOS's engine has): the
    first data-changing statement begins one, and takes the turn."""
    gate = WriterGate(db)
    implicit = _connect(gate, db, "IMMEDIATE")
    implicit.execute("SELECT n FROM counter").fetchone()  # a read takes nothing
    assert not _turn_taken(gate)
    other = _connect(gate, db, None)
    _thread, written = _in_thread(lambda: (other.execute("BEGIN IMMEDIATE"), other.commit()))
    assert written.wait(5)
    implicit.execute("UPDATE counter SET n = n + 1")
    assert _turn_taken(gate)
    blocked = _connect(gate, db, None)
    _thread, second = _in_thread(lambda: (blocked.execute("BEGIN IMMEDIATE"), blocked.commit()))
    assert not second.wait(0.3)
    implicit.commit()
    assert second.wait(5)


def test_concurrent_writers_lose_no_update(db: Path) -> None:
    gate = WriterGate(db)

    def add(times: int) -> None:
        conn = _connect(gate, db, None)
        for _ in range(times):
            conn.execute("BEGIN IMMEDIATE")
            (n,) = conn.execute("SELECT n FROM counter").fetchone()
            conn.execute("UPDATE counter SET n = ?", (n + 1,))
            conn.commit()
        conn.close()

    threads = [threading.Thread(target=add, args=(200,)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT n FROM counter").fetchone() == (1600,)
    assert not _turn_taken(gate)


HOLDER = """
import sqlite3, sys
from pathlib import Path
from marketpilot.platform.db.writer_gate import WriterGate, gate_for
gate = WriterGate(Path(sys.argv[1]))
conn = sqlite3.connect(sys.argv[1], factory=gate.connection_factory(), timeout=30)
conn.isolation_level = None
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
"""


def test_another_process_holding_the_turn_makes_us_wait_until_it_dies(db: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        gate = WriterGate(db)
        assert _turn_taken(gate)
        conn = _connect(gate, db, None)
        _thread, written = _in_thread(lambda: (conn.execute("BEGIN IMMEDIATE"), conn.commit()))
        assert not written.wait(0.5), "we wrote while another process held the turn"
        holder.kill()  # SIGKILL: the kernel drops its flock and SQLite its lock
        assert written.wait(10), "the turn of a killed process was never given back"
    finally:
        holder.kill()
        holder.wait()


def test_the_app_database_queues_its_write_sessions_at_the_gate(tmp_path: Path) -> None:
    from sqlalchemy import text

    from marketpilot.platform.db import Database

    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        gate = gate_for(tmp_path / "app.db")
        with database.session() as s:
            s.execute(text("CREATE TABLE t (x INTEGER)"))
            assert _turn_taken(gate)
        assert not _turn_taken(gate)
        with database.read() as s:
            s.execute(text("SELECT count(*) FROM t")).scalar()
            assert not _turn_taken(gate)
    finally:
        database.dispose()
