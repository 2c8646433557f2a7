"""Dead letters: events a consumer gave up on after its retry budget.

Giving up is recorded in the database, not only in a log line, so an operator can list and
replay what was skipped. Until a dedicated table exists, a dead letter is two rows in the
idempotency ledger (`processed_events`):

* ``(consumer, event id)``: the consumer treats the event as done, so a redelivery of the
  same poison event (Kafka rebalance, relay republish) does not burn another retry budget;
* ``("dead-letter/" + consumer, event id)``: the marker that :func:`dead_letters` lists.
  Consumer names cannot contain ``/``, so a marker never collides with a real consumer.

The full envelope is joined from the outbox (both profiles keep it there), and the failure
is logged at ERROR with the event, the attempt count and the traceback.

To replay a dead letter: fix the handler, delete both ledger rows, and rewind the consumer
(embedded: set its `consumer_offsets.position` below the event; distributed: republish by
clearing the row's `outbox.published_at`).
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketpilot.platform.db.schema import OutboxEvent, ProcessedEvent
from marketpilot.platform.events import ledger
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.outbox import row_to_event

log = logging.getLogger(__name__)

DEAD_LETTER_PREFIX = "dead-letter/"


def marker(consumer: str) -> str:
    return DEAD_LETTER_PREFIX + consumer


def record(session: Session, consumer: str, event: CloudEvent, error: BaseException, attempts: int) -> None:
    """Give up on `event` for `consumer` within the caller's transaction."""
    log.error(
        "consumer %s gave up on event %s (%s, subject %s) after %d attempts; dead-lettered: %s",
        consumer, event.id, event.type, event.subject, attempts, event.to_json().decode(),
        exc_info=(type(error), error, error.__traceback__),
    )
    # Earlier rows (a concurrent worker that also gave up) are replaced, never duplicated.
    keys = (marker(consumer), consumer)
    session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.consumer.in_(keys), ProcessedEvent.event_id == event.id)
    )
    for key in keys:
        ledger.record(session, key, event.id)


def dead_letters(session: Session, consumer: str) -> list[CloudEvent]:
    """Events `consumer` gave up on, in outbox order."""
    rows = session.scalars(
        select(OutboxEvent)
        .join(ProcessedEvent, ProcessedEvent.event_id == OutboxEvent.event_id)
        .where(ProcessedEvent.consumer == marker(consumer))
        .order_by(OutboxEvent.position)
    )
    return [row_to_event(r) for r in rows]
