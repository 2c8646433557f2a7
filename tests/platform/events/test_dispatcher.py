"""Embedded dispatcher specifics; the shared delivery contract is in test_delivery_contract."""

from __future__ import annotations

import threading

from events_harness import (
    SOURCE,
    UPDATED,
    effects_of,
    recorder,
    wait_for,
    write_updates,
)
from sqlalchemy.orm import Session

from marketpilot.domain.events import ListingUpdated
from marketpilot.platform.db import Database
from marketpilot.platform.events import Dispatcher, EventBus, consumer_lag, outbox


def audit_bus(*names: str) -> EventBus:
    bus = EventBus()
    for name in names:
        bus.subscribe(name, [UPDATED], recorder(name))
    return bus


def update(session: Session, subject: str, seq: int) -> None:
    outbox.append(session, ListingUpdated(listing_id=subject, seller_id="s1", changes={"seq": seq}), SOURCE)


def test_lag_is_the_distance_from_each_offset_to_the_outbox_head(events_db: Database) -> None:
    write_updates(events_db, ["a", "b"], per_subject=3)
    dispatcher = Dispatcher(events_db, audit_bus("fast", "slow"), batch_size=2)
    assert dispatcher.lag() == {"fast": 6, "slow": 6}

    dispatcher.run_once(max_events=3)  # "fast" takes one batch of 2, "slow" the 1 left
    lag = dispatcher.lag()
    assert lag["fast"] == 4 and lag["slow"] == 5
    assert consumer_lag(events_db, ["never-ran"]) == {"never-ran": 6}


def test_run_once_hands_over_at_most_max_events(events_db: Database) -> None:
    write_updates(events_db, ["a"], per_subject=10)
    dispatcher = Dispatcher(events_db, audit_bus("audit"))
    assert dispatcher.run_once(max_events=4) == 4
    assert dispatcher.run_once(max_events=100) == 6
    assert dispatcher.run_once() == 0


def test_a_busy_consumer_does_not_starve_the_others(sqlite_events_db: Database) -> None:
    write_updates(sqlite_events_db, ["a"], per_subject=20)
    dispatcher = Dispatcher(sqlite_events_db, audit_bus("first", "second"), batch_size=5)
    assert dispatcher.run_once(max_events=5) == 5
    assert dispatcher.run_once(max_events=5) == 5
    assert dispatcher.lag() == {"first": 15, "second": 15}


def test_an_event_still_being_written_is_not_skipped(pg_db: Database) -> None:
    dispatcher = Dispatcher(pg_db, audit_bus("audit"))
    with pg_db.session() as held:
        update(held, "slow", 1)  # takes position 1 and stays uncommitted for now
        write_updates(pg_db, ["fast"], per_subject=1, start=2)  # position 2, committed
        assert dispatcher.run_once() == 0
        assert dispatcher.lag() == {"audit": 2}
    assert dispatcher.run_once() == 2
    assert [(e.subject, e.seq) for e in effects_of(pg_db, "audit")] == [("slow", 1), ("fast", 2)]


def test_a_rolled_back_event_leaves_a_gap_that_does_not_stall_delivery(pg_db: Database) -> None:
    dispatcher = Dispatcher(pg_db, audit_bus("audit"))
    with pg_db.engine.connect() as conn:
        transaction = conn.begin()
        with Session(bind=conn) as held:
            update(held, "gone", 1)
            write_updates(pg_db, ["kept"], per_subject=1, start=2)
            assert dispatcher.run_once() == 0
        transaction.rollback()
    assert dispatcher.run_once() == 1
    assert [e.subject for e in effects_of(pg_db, "audit")] == ["kept"]
    assert dispatcher.lag() == {"audit": 0}


def test_dispatchers_sharing_a_database_handle_each_event_once(pg_db: Database) -> None:
    events = write_updates(pg_db, ["a", "b", "c"], per_subject=8)
    bus = audit_bus("one", "two", "three")
    stop = threading.Event()
    threads = [Dispatcher(pg_db, bus, batch_size=5).start(stop, poll_interval=0.01) for _ in range(2)]
    try:
        wait_for(lambda: not any(consumer_lag(pg_db, ["one", "two", "three"]).values()),
                 lambda: stop.wait(0.05), what="both dispatchers to drain the outbox")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    for name in ("one", "two", "three"):
        assert sorted(e.event_id for e in effects_of(pg_db, name)) == sorted(e.id for e in events)


def test_the_background_thread_stops_when_asked(sqlite_events_db: Database) -> None:
    write_updates(sqlite_events_db, ["a"], per_subject=3)
    stop = threading.Event()
    thread = Dispatcher(sqlite_events_db, audit_bus("audit")).start(stop, poll_interval=0.01)
    wait_for(lambda: len(effects_of(sqlite_events_db, "audit")) == 3, lambda: stop.wait(0.02), what="delivery")
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
