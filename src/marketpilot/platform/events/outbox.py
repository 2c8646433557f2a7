"""Transactional outbox: events are rows written in the caller's transaction.

A service changes state and calls :func:`append` on the same SQLAlchemy session; both
commit or neither does. Delivery (embedded dispatcher or Kafka relay) reads the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert

from marketpilot.domain.events import EventData
from marketpilot.platform.db.engine import Executor
from marketpilot.platform.db.schema import OutboxEvent
from marketpilot.platform.events.cloudevent import CloudEvent

# Core table, not the ORM class: a Core executemany skips per-row ORM bookkeeping.
OUTBOX = cast(Table, OutboxEvent.__table__)
# Built once: the same statement object keeps its cache key, so an append compiles nothing.
_INSERT = insert(OUTBOX)


def _row(event: CloudEvent) -> dict[str, object]:
    return {
        "event_id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time,
        "data": event.data,
    }


def append(session: Executor, payload: EventData, source: str, *, time: datetime | None = None) -> CloudEvent:
    event = CloudEvent.create(payload, source, time=time)
    session.execute(_INSERT, [_row(event)])
    return event


def append_many(
    session: Executor, payloads: Sequence[EventData], source: str, *, time: datetime | None = None
) -> list[CloudEvent]:
    events = [CloudEvent.create(p, source, time=time) for p in payloads]
    if events:
        session.execute(_INSERT, [_row(e) for e in events])
    return events


def row_to_event(row: OutboxEvent) -> CloudEvent:
    return CloudEvent(
        id=row.event_id,
        source=row.source,
        type=row.type,
        subject=row.subject,
        time=row.time,
        data=row.data,
    )
