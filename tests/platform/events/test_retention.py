"""Outbox retention: old events go once every reader is done with them; nothing else does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from marketpilot.domain.events import ListingUpdated
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import ConsumerOffset, ProcessedEvent, utcnow
from marketpilot.platform.events import outbox
from marketpilot.platform.events.outbox import OUTBOX
from marketpilot.platform.events.retention import OutboxRetention, purge_ledger, purge_outbox

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
    _ledger(db, [("orders", "gone-1", 400), ("orders", "fresh", -1)])
    done = runner.invoke(app, ["outbox", "purge", "--older-than-days", "250", "--ledger-older-than-days", "1"])
    assert done.exit_code == 0, done.output
    assert "2 events deleted" in done.output
    assert "1 ledger rows deleted" in done.output  # gone-1; "fresh" is a day after NOW, which is in the real past
    assert len(_positions(db)) == 2
    assert {key[1] for key in _ledger_keys(db)} == {"fresh"}
    db.dispose()


# -- the idempotency ledger --------------------------------------------------------------------


def _ledger(db: Database, rows: list[tuple[str, str, float]]) -> None:
    """Ledger rows (consumer, event id, age in days before NOW)."""
    with db.session() as s:
        s.execute(insert(ProcessedEvent), [{"consumer": c, "event_id": e, "processed_at": NOW - timedelta(days=age)}
                                           for c, e, age in rows])


def _ledger_keys(db: Database) -> set[tuple[str, str]]:
    with db.read() as s:
        return {(r.consumer, r.event_id) for r in s.execute(select(ProcessedEvent.consumer, ProcessedEvent.event_id))}


def _event_ids(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(OUTBOX.c.event_id).order_by(OUTBOX.c.position)))


def test_ledger_rows_go_once_old_and_their_event_has_left_the_outbox(events_db: Database) -> None:
    """Old rows of events no longer in the outbox go; a recent row, a row whose event is
    still in the outbox (it could still be delivered) and a dead-letter marker stay."""
    _write(events_db, [50])
    kept_event = _event_ids(events_db)[0]
    _ledger(events_db, [
        ("recommend.inventory", "purged-a", 40), ("fraud.decisions", "purged-a", 39), ("fraud.decisions", "purged-b", 31),
        ("recommend.inventory", "recent", 29),
        ("recommend.inventory", kept_event, 50),
        ("dead-letter/recommend.inventory", "purged-c", 90),
    ])
    dry = purge_ledger(events_db, older_than=WINDOW, now=NOW, dry_run=True)
    assert (dry.deleted, dry.eligible, dry.dry_run) == (0, 3, True)
    assert len(_ledger_keys(events_db)) == 6
    report = purge_ledger(events_db, older_than=WINDOW, now=NOW)
    assert (report.deleted, report.eligible) == (3, 3)
    assert _ledger_keys(events_db) == {("recommend.inventory", "recent"), ("recommend.inventory", kept_event),
                                       ("dead-letter/recommend.inventory", "purged-c")}
    assert purge_ledger(events_db, older_than=WINDOW, now=NOW).deleted == 0


def test_the_ledger_purge_goes_oldest_first_in_batches_and_stops_between_them(events_db: Database) -> None:
    _ledger(events_db, [("orders", f"e{i:02d}", 100 - i) for i in range(11)])
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        stop.set()

    report = purge_ledger(events_db, older_than=WINDOW, now=NOW, batch=4, progress=progress, stop=stop)
    assert report.deleted == 4 and seen == [(4, 11)]
    assert {e for _, e in _ledger_keys(events_db)} == {f"e{i:02d}" for i in range(4, 11)}  # the oldest went
    report = purge_ledger(events_db, older_than=WINDOW, now=NOW, batch=4, progress=lambda d, t: seen.append((d, t)))
    assert report.deleted == 7 and seen[1:] == [(4, 7), (7, 7)]
    assert _ledger_keys(events_db) == set()
    with pytest.raises(ValueError, match="older_than"):
        purge_ledger(events_db, older_than=timedelta(0))
    with pytest.raises(ValueError, match="batch"):
        purge_ledger(events_db, older_than=WINDOW, batch=0)


def test_the_worker_job_also_purges_the_ledger(sqlite_events_db: Database) -> None:
    _write(sqlite_events_db, [400, 300, 0])
    _ledger(sqlite_events_db, [("orders", "long-gone", 400), ("orders", "fresh", -1)])  # NOW is in the real past
    job = OutboxRetention(sqlite_events_db, retention_days=30, published_only=False, ledger_retention_days=30)
    job.run_once()
    assert job.last is not None and job.last.deleted == 2
    assert job.last_ledger is not None and job.last_ledger.deleted == 1
    assert _ledger_keys(sqlite_events_db) == {("orders", "fresh")}
    without = OutboxRetention(sqlite_events_db, retention_days=30, published_only=False)
    without.run_once()
    assert without.last_ledger is None
