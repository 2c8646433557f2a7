"""The idempotency ledger: run handlers so that each event counts once per consumer.

Both delivery paths hand a batch of events to :func:`handle_batch` inside one database
transaction. Each event gets a SAVEPOINT holding the ledger row ``(consumer, event id)`` and
whatever the handler writes, so a failing handler undoes only its own event and the events
before it still commit. An event already in the ledger is skipped without calling the
handler: that is how redeliveries (a relay republishing after a crash, a Kafka rebalance, a
rewound offset) are absorbed.

The ledger row is written *before* the handler runs. If another worker is processing the same
event concurrently, the insert waits for it and then fails on the primary key (PostgreSQL) or
is serialised by the write lock (SQLite); either way the event is counted as a duplicate and
this worker's handler effects are rolled back with the savepoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketpilot.platform.db.schema import ProcessedEvent, utcnow
from marketpilot.platform.events.base import Subscription
from marketpilot.platform.events.cloudevent import CloudEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandlerFailure:
    """The handler raised for `event`, the `index`-th of the batch."""

    index: int
    event: CloudEvent
    error: Exception


@dataclass(frozen=True)
class BatchOutcome:
    """`processed` leading events of the batch are done (handled, duplicate or not wanted)."""

    processed: int
    handled: int
    duplicates: int
    failure: HandlerFailure | None = None


@dataclass
class DeliveryStats:
    """Running counts for one consumer in this process (for metrics and tests)."""

    handled: int = 0
    duplicates: int = 0
    failures: int = 0
    dead_lettered: int = 0

    def add(self, outcome: BatchOutcome) -> None:
        self.handled += outcome.handled
        self.duplicates += outcome.duplicates
        self.failures += outcome.failure is not None


def processed_ids(session: Session, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """The subset of `event_ids` already in the ledger for `consumer`."""
    found: set[str] = set()
    # Chunked so that a large batch stays under every driver's bound-parameter limit.
    for start in range(0, len(event_ids), 5000):
        chunk = event_ids[start : start + 5000]
        found.update(
            session.scalars(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.consumer == consumer, ProcessedEvent.event_id.in_(chunk)
                )
            )
        )
    return found


def record(session: Session, consumer: str, event_id: str) -> None:
    """Add `(consumer, event_id)` to the ledger; IntegrityError if it is already there."""
    session.execute(insert(ProcessedEvent).values(consumer=consumer, event_id=event_id, processed_at=utcnow()))


def handle_batch(session: Session, subscription: Subscription, events: Sequence[CloudEvent]) -> BatchOutcome:
    """Deliver `events` in order to `subscription` within the caller's transaction.

    Stops at the first handler failure; the caller commits what was done and decides about
    retries. Events the subscription does not want count as processed.
    """
    wanted = [e.id for e in events if subscription.wants(e.type)]
    done = processed_ids(session, subscription.name, wanted) if wanted else set()
    handled = duplicates = 0
    for index, event in enumerate(events):
        if not subscription.wants(event.type):
            continue
        if event.id in done:
            duplicates += 1
            continue
        savepoint = session.begin_nested()
        try:
            record(session, subscription.name, event.id)
        except IntegrityError:
            savepoint.rollback()
            log.info("consumer %s: event %s was processed concurrently; skipped", subscription.name, event.id)
            duplicates += 1
            done.add(event.id)
            continue
        try:
            subscription.handler(event, session)
            session.flush()
        except Exception as exc:
            savepoint.rollback()
            return BatchOutcome(index, handled, duplicates, HandlerFailure(index, event, exc))
        savepoint.commit()
        done.add(event.id)
        handled += 1
    return BatchOutcome(len(events), handled, duplicates)
