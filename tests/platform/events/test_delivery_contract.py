"""The delivery contract, asserted identically on every backend (see the `delivery` fixture):
embedded dispatcher on SQLite and on PostgreSQL, and outbox -> relay -> Kafka -> consumer group.
"""

from __future__ import annotations

from collections import Counter

from events_harness import (
    INVENTORY,
    UPDATED,
    Delivery,
    deliver_until,
    effects_of,
    forget_ledger,
    recorder,
    seqs_by_subject,
    write_inventory,
    write_updates,
)
from sqlalchemy.orm import Session

from marketpilot.platform.events import CloudEvent, EventBus, RetryPolicy, dead_letters

SUBJECTS = ["l1", "l2", "l3", "l4", "l5"]
QUICK_RETRY = RetryPolicy(max_attempts=1000, initial_backoff=0.01, max_backoff=0.05)


def test_every_event_is_delivered_once_in_per_aggregate_order(delivery: Delivery) -> None:
    events = write_updates(delivery.db, SUBJECTS, per_subject=6)
    bus = EventBus()
    bus.subscribe("audit", [UPDATED], recorder("audit"))
    delivery.start(bus, QUICK_RETRY)

    deliver_until(delivery, lambda: len(effects_of(delivery.db, "audit")) >= len(events), "all events handled")
    delivery.settle()

    found = effects_of(delivery.db, "audit")
    assert Counter(e.event_id for e in found) == Counter(e.id for e in events)
    for subject, seqs in seqs_by_subject(found).items():
        assert seqs == sorted(seqs), f"events of {subject} arrived out of order: {seqs}"


def test_a_subscriber_receives_only_the_types_it_asked_for(delivery: Delivery) -> None:
    updates = write_updates(delivery.db, SUBJECTS[:2], per_subject=2)
    stock = write_inventory(delivery.db, SUBJECTS[:3])
    bus = EventBus()
    bus.subscribe("listings", [UPDATED], recorder("listings"))
    bus.subscribe("stock", [INVENTORY], recorder("stock"))
    delivery.start(bus, QUICK_RETRY)

    def both_done() -> bool:
        return len(effects_of(delivery.db, "listings")) >= 4 and len(effects_of(delivery.db, "stock")) >= 3

    deliver_until(delivery, both_done, "both subscribers served")
    delivery.settle()

    assert sorted(e.event_id for e in effects_of(delivery.db, "listings")) == sorted(e.id for e in updates)
    assert sorted(e.event_id for e in effects_of(delivery.db, "stock")) == sorted(e.id for e in stock)


def test_redelivered_events_are_absorbed_by_the_ledger(delivery: Delivery) -> None:
    events = write_updates(delivery.db, SUBJECTS, per_subject=2)
    bus = EventBus()
    bus.subscribe("audit", [UPDATED], recorder("audit"))
    delivery.start(bus, QUICK_RETRY)
    deliver_until(delivery, lambda: len(effects_of(delivery.db, "audit")) >= len(events), "first delivery")
    delivery.settle()

    delivery.redeliver_everything()
    deliver_until(delivery, lambda: delivery.duplicates_skipped() >= len(events), "the redelivered copies")
    delivery.settle()

    assert sorted(e.event_id for e in effects_of(delivery.db, "audit")) == sorted(e.id for e in events)


def test_a_failing_handler_is_retried_and_its_events_wait_behind_it(delivery: Delivery) -> None:
    events = write_updates(delivery.db, SUBJECTS, per_subject=4)
    poison = events[7]  # the second event of its subject
    attempts: list[str] = []
    broken = True
    record = recorder("audit")

    def flaky(event: CloudEvent, session: Session) -> None:
        record(event, session)  # written, then rolled back with the failure
        if event.id == poison.id:
            attempts.append(event.id)
            if broken:
                raise RuntimeError("downstream unavailable")

    bus = EventBus()
    bus.subscribe("audit", [UPDATED], flaky)
    delivery.start(bus, QUICK_RETRY)
    deliver_until(delivery, lambda: len(attempts) >= 3, "the failing event to be retried")

    found = effects_of(delivery.db, "audit")
    assert poison.id not in {e.event_id for e in found}
    later_same_subject = {e.id for e in events[events.index(poison) + 1 :] if e.subject == poison.subject}
    assert not later_same_subject & {e.event_id for e in found}

    # A fresh instance starts from the stored offset, which never moved past the failure.
    delivery.restart()
    broken = False
    deliver_until(delivery, lambda: len(effects_of(delivery.db, "audit")) >= len(events), "recovery")
    delivery.settle()

    found = effects_of(delivery.db, "audit")
    assert Counter(e.event_id for e in found) == Counter(e.id for e in events)
    for subject, seqs in seqs_by_subject(found).items():
        assert seqs == sorted(seqs), f"events of {subject} arrived out of order: {seqs}"


def test_offsets_survive_a_restart(delivery: Delivery) -> None:
    first = write_updates(delivery.db, SUBJECTS, per_subject=2)
    bus = EventBus()
    bus.subscribe("audit", [UPDATED], recorder("audit"))
    delivery.start(bus, QUICK_RETRY)
    deliver_until(delivery, lambda: len(effects_of(delivery.db, "audit")) >= len(first), "the first half")
    delivery.settle()

    delivery.restart()
    # Without its ledger, only the stored offset keeps the first half from running again.
    forget_ledger(delivery.db, "audit")
    second = write_updates(delivery.db, SUBJECTS, per_subject=2, start=100)
    deliver_until(
        delivery, lambda: len(effects_of(delivery.db, "audit")) >= len(first) + len(second), "the second half"
    )
    delivery.settle()

    assert Counter(e.event_id for e in effects_of(delivery.db, "audit")) == Counter(e.id for e in first + second)


def test_a_poison_event_is_dead_lettered_after_the_retry_budget(delivery: Delivery) -> None:
    events = write_updates(delivery.db, SUBJECTS[:2], per_subject=3)
    poison = events[2]
    record = recorder("audit")

    def picky(event: CloudEvent, session: Session) -> None:
        if event.id == poison.id:
            raise ValueError("cannot parse this one")
        record(event, session)

    bus = EventBus()
    bus.subscribe("audit", [UPDATED], picky)
    delivery.start(bus, RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02))
    deliver_until(delivery, lambda: len(effects_of(delivery.db, "audit")) >= len(events) - 1, "the others")
    delivery.settle()

    assert sorted(e.event_id for e in effects_of(delivery.db, "audit")) == sorted(
        e.id for e in events if e.id != poison.id
    )
    with delivery.db.session() as s:
        assert [e.id for e in dead_letters(s, "audit")] == [poison.id]
