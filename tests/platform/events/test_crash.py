"""Durability proved the hard way: a real worker process is SIGKILLed mid-delivery, restarted,
and every event is still handled exactly once (the effects table counts handler runs that
committed), in per-aggregate order. The last run is the real `run_worker`, stopped by SIGTERM.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from events_harness import (
    UPDATED,
    effects_of,
    fresh_database,
    read_topic,
    seqs_by_subject,
    wait_for,
    write_updates,
)
from sqlalchemy import func, select

from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import OutboxEvent
from marketpilot.platform.events import CloudEvent, KafkaOptions, consumer_lag

SCRIPT = Path(__file__).with_name("crash_worker.py")
SUBJECTS = [f"l{i}" for i in range(10)]
CONSUMER = "crash"


@contextmanager
def worker(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """The crash worker as a child process; killed on the way out whatever happened."""
    log = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield proc
        except BaseException as exc:
            exc.add_note(f"worker log:\n{log.read_text()[-3000:]}")
            raise
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()


def await_line(proc: subprocess.Popen[str], expected: str, limit: float = 90.0) -> None:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = proc.stdout.readline()
            if line.strip() == expected:
                return
            if not line:
                raise AssertionError(f"worker exited with {proc.wait()} before printing {expected}")
    raise AssertionError(f"worker did not print {expected} within {limit:.0f}s")


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def stop_gracefully(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert proc.stdout is not None and "STOPPED" in proc.stdout.read()


def assert_each_handled_once_in_order(db: Database, events: list[CloudEvent]) -> None:
    found = effects_of(db, CONSUMER)
    duplicates = [i for i, n in Counter(e.event_id for e in found).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} events were handled twice"
    assert {e.event_id for e in found} == {e.id for e in events}, "events were lost"
    for subject, seqs in seqs_by_subject(found).items():
        assert seqs == sorted(seqs), f"events of {subject} were handled out of order: {seqs}"


def test_a_killed_embedded_dispatcher_loses_and_repeats_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    db = fresh_database(url)
    events = write_updates(db, SUBJECTS, per_subject=10)

    # Killed inside the handler's transaction: the dispatcher commits batches of 10, so the
    # 15th handler call dies with the second batch open and the first one done.
    with worker(tmp_path, "--db", url, "--mode", "dispatch", "--block-after", "15") as proc:
        await_line(proc, "BLOCKED")
        kill(proc)
    assert len(effects_of(db, CONSUMER)) == 10
    # Written while no worker runs; the next worker must be up (with its signal handlers
    # installed) before it can have handled them.
    events += write_updates(db, SUBJECTS, per_subject=2, start=len(events))

    with worker(tmp_path, "--db", url, "--mode", "worker", "--home", str(tmp_path)) as proc:
        wait_for(lambda: len(effects_of(db, CONSUMER)) >= len(events), lambda: time.sleep(0.1),
                 what="the worker to catch up")
        stop_gracefully(proc)

    assert_each_handled_once_in_order(db, events)
    assert consumer_lag(db, [CONSUMER]) == {CONSUMER: 0}
    db.dispose()


def test_a_killed_relay_and_consumer_lose_and_repeat_nothing(
    pg_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    db = fresh_database(pg_url)
    prefix = f"t{uuid.uuid4().hex[:10]}."
    kafka = ("--db", pg_url, "--bootstrap", kafka_bootstrap, "--prefix", prefix)
    events = write_updates(db, SUBJECTS, per_subject=10)

    # One process, two deaths at once: the relay hangs after Kafka acknowledged its second
    # batch of 25 (before marking it published), the consumer inside its 30th handler call.
    with worker(tmp_path, *kafka, "--mode", "consume", "--block-after", "30") as proc:
        await_line(proc, "BLOCKED")
        await_line(proc, "BLOCKED")
        kill(proc)
    with db.session() as s:
        assert s.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None))) == 75

    events += write_updates(db, SUBJECTS, per_subject=2, start=len(events))
    with worker(tmp_path, *kafka, "--mode", "worker") as proc:
        wait_for(lambda: len(effects_of(db, CONSUMER)) >= len(events), lambda: time.sleep(0.2),
                 what="the distributed worker to catch up")
        stop_gracefully(proc)

    assert_each_handled_once_in_order(db, events)
    # The batches published but not marked went to Kafka twice; the ledger absorbed them.
    options = KafkaOptions(bootstrap=kafka_bootstrap, topic_prefix=prefix, partitions=3)
    assert len(read_topic(options, UPDATED, len(events) + 25)) >= len(events) + 25
    db.dispose()
