"""Outbox retention: old events go once every reader is done with them; nothing else does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from marketpilot.domain.events import ListingUpdated
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import ConsumerOffset, utcnow
from marketpilot.platform.events import outbox
from marketpilot.platform.events.outbox import OUTBOX
from marketpilot.platform.events.retention import OutboxRetention, purge_outbox

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)


def _write(db: Database, ages_days: list[float]) -> list[int]:
    """One event per age (days before NOW), oldest first; their positions."""
    before = set(_positions(db))
    with db.session() as s:
        for i, age in enumerate(ages_days):
            outbox.append(s, ListingUpdated(listing_id=f"l{i}", seller_id="s1", changes={"seq": i}), "test",
                          time=NOW - timedelta(days=age))
    return [p for p in _positions(db) if p not in before]


def _positions(db: Database) -> list[int]:
    with db.read() as s:
        return list(s.scalars(select(OUTBOX.c.position).order_by(OUTBOX.c.position)))


def _set_offset(db: Database, consumer: str, position: int) -> None:
    with db.session() as s:
        s.execute(insert(ConsumerOffset).values(consumer=consumer, position=position, updated_at=utcnow()))


def test_only_events_older_than_the_window_go_and_never_the_newest(events_db: Database) -> None:
    positions = _write(events_db, [40, 35, 31, 29, 1])
    report = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=NOW)
    assert (report.deleted, report.eligible, report.held_back_by) == (3, 3, "retention")
    assert _positions(events_db) == positions[3:]

    # Everything old: the newest row still stays (SQLite would hand its position out again).
    everything_old = _write(events_db, [60, 50])
    report = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=NOW)
    assert report.held_back_by == "retention"  # the rows of 29 and 1 days ago come first
    assert _positions(events_db) == positions[3:] + everything_old
    later = NOW + timedelta(days=365)
    report = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=later)
    assert (report.deleted, report.held_back_by) == (3, "newest")
    assert _positions(events_db) == everything_old[-1:]


def test_the_slowest_consumer_holds_the_outbox_back(events_db: Database) -> None:
    positions = _write(events_db, [90, 80, 70, 60, 50])
    _set_offset(events_db, "recommend.inventory", positions[3])
    _set_offset(events_db, "fraud.orders", positions[1])  # has read the first two only
    report = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=NOW)
    assert (report.deleted, report.held_back_by) == (2, "consumer:fraud.orders")
    assert _positions(events_db) == positions[2:]


def test_a_dead_letters_event_stays_for_its_replay(events_db: Database) -> None:
    from marketpilot.platform.db.schema import OutboxEvent
    from marketpilot.platform.events import deadletter
    from marketpilot.platform.events.outbox import row_to_event

    positions = _write(events_db, [90, 80, 70, 1])
    with events_db.session() as s:
        poison = row_to_event(s.scalars(select(OutboxEvent).where(OutboxEvent.position == positions[1])).one())
        deadletter.record(s, "recommend.inventory", poison, RuntimeError("handler bug"), attempts=5)
    report = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=NOW)
    assert report.deleted == 2
    assert _positions(events_db) == [positions[1], positions[3]]
    with events_db.read() as s:
        assert [e.id for e in deadletter.dead_letters(s, "recommend.inventory")] == [poison.id]


def test_a_relayed_outbox_keeps_what_the_relay_has_not_published(events_db: Database) -> None:
    positions = _write(events_db, [90, 80, 70, 60, 50])
    with events_db.session() as s:
        s.execute(update(OUTBOX).where(OUTBOX.c.position.in_([positions[0], positions[2]]))
                  .values(published_at=NOW - timedelta(days=40)))
    report = purge_outbox(events_db, older_than=WINDOW, published_only=True, now=NOW)
    assert report.deleted == 2
    assert _positions(events_db) == [positions[1], *positions[3:]]


def test_batches_report_progress_and_a_dry_run_deletes_nothing(events_db: Database) -> None:
    positions = _write(events_db, [40 - i * 0.1 for i in range(7)] + [1])
    dry = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=NOW, dry_run=True)
    assert (dry.deleted, dry.eligible, dry.dry_run) == (0, 7, True)
    assert _positions(events_db) == positions

    seen: list[tuple[int, int]] = []
    report = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=NOW, batch=3,
                          progress=lambda done, total: seen.append((done, total)))
    assert report.deleted == 7
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert _positions(events_db) == positions[-1:]


def test_a_stop_ends_the_purge_between_batches(events_db: Database) -> None:
    positions = _write(events_db, [40 - i * 0.1 for i in range(7)] + [1])
    stop = threading.Event()
    report = purge_outbox(events_db, older_than=WINDOW, published_only=False, now=NOW, batch=3,
                          progress=lambda done, total: stop.set(), stop=stop)
    assert report.deleted == 3
    assert _positions(events_db) == positions[3:]


def test_bad_arguments_are_refused(events_db: Database) -> None:
    with pytest.raises(ValueError, match="older_than"):
        purge_outbox(events_db, older_than=timedelta(0), published_only=False)
    with pytest.raises(ValueError, match="batch"):
        purge_outbox(events_db, older_than=WINDOW, published_only=False, batch=0)


def test_the_worker_job_purges_at_start(sqlite_events_db: Database) -> None:
    _write(sqlite_events_db, [400, 300, 0])  # ages relative to NOW, which is in the past of the real clock
    job = OutboxRetention(sqlite_events_db, retention_days=30, published_only=False, interval=3600)
    stop = threading.Event()
    thread = threading.Thread(target=job.run_forever, args=(stop,))
    thread.start()
    try:
        for _ in range(200):
            if job.last is not None:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert job.last is not None and job.last.deleted == 2
    with sqlite_events_db.read() as s:
        assert s.scalar(select(func.count()).select_from(OUTBOX)) == 1


def test_the_cli_purges_the_configured_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from marketpilot.cli import app
    from marketpilot.platform.config import Settings

    monkeypatch.setenv("MARKETPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MARKETPILOT_AUTH_REQUIRED", "false")
    db = Database.from_settings(Settings(home=tmp_path / "home"))
    db.migrate()
    _write(db, [400, 300, 200, 0])  # NOW is in the real clock's past: the first three are old
    runner = CliRunner()
    dry = runner.invoke(app, ["outbox", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 events would be deleted" in dry.output
    assert len(_positions(db)) == 4
    done = runner.invoke(app, ["outbox", "purge", "--older-than-days", "250"])
    assert done.exit_code == 0, done.output
    assert "2 events deleted" in done.output
    assert len(_positions(db)) == 2
    db.dispose()
