"""Reading the outbox by position without ever stepping over an event still being written.

An offset-based reader (the embedded dispatcher) must not advance past a position whose row
may yet appear. On SQLite that cannot happen: writers are serialised (BEGIN IMMEDIATE) and a
row id is assigned inside the write lock, so what a reader sees is always a prefix of the
final order. On PostgreSQL the `position` sequence is handed out at INSERT time but
transactions commit in any order: a reader can see position 11 committed while 10 is still
in flight, and an offset moved to 11 would lose 10 for good.

So on PostgreSQL a batch is cut at its first *gap* (a missing position), unless the gap is
known to be permanent (a rolled-back or deleted row). A gap is permanent once no transaction
that could hold it is still running. Any transaction that took a position at or below the
highest one we read had already started when our read's snapshot was taken, and it holds a
RowExclusiveLock on `outbox` from its INSERT until it ends. If no such lock is held by a
transaction that started before our read, every gap below our highest row is final; the
range is then read again, since such a transaction may have committed in between.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, null, select, text, type_coerce
from sqlalchemy.orm import Session

from marketpilot.platform.db.schema import OutboxEvent
from marketpilot.platform.events.cloudevent import CloudEvent

_COLUMNS = (
    OutboxEvent.position,
    OutboxEvent.event_id,
    OutboxEvent.source,
    OutboxEvent.type,
    OutboxEvent.subject,
    OutboxEvent.time,
    OutboxEvent.data,
)

# Writers holding the outbox open since before `:read_at`. `xact_start` is NULL for sessions
# of other roles unless we may read their stats; such a writer is assumed to be old (safe).
_OLD_WRITERS = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.relation = to_regclass('outbox')
          AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()
          AND (a.xact_start IS NULL OR a.xact_start <= :read_at)
    )
    """
)


@dataclass(frozen=True)
class OutboxRecord:
    position: int
    event: CloudEvent


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _records(rows: list[tuple[Any, ...]]) -> list[OutboxRecord]:
    return [
        OutboxRecord(
            position=int(r[0]),
            event=CloudEvent(id=r[1], source=r[2], type=r[3], subject=r[4], time=as_utc(r[5]), data=r[6]),
        )
        for r in rows
    ]


def _first_gap(after: int, positions: list[int]) -> int | None:
    """Index of the first row preceded by a missing position, or None if contiguous."""
    expected = after + 1
    for index, position in enumerate(positions):
        if position != expected:
            return index
        expected = position + 1
    return None


def read_committed(session: Session, after: int, limit: int,
                   payload_types: Collection[str] | None = None) -> list[OutboxRecord]:
    """Up to `limit` outbox events with position > `after`, in order, none behind a live gap.

    May return fewer than `limit` (even none) while an earlier position is in flight; a later
    call returns them once it has committed or rolled back.

    With `payload_types`, only events of those types carry their `data`; the others come back
    with ``data=None`` (their position, id and type still count), so a reader that folds a few
    types does not fetch and decode every other event's payload (the recommendation service,
    reading past the slates it logs itself).
    """
    columns: tuple[Any, ...] = _COLUMNS
    if payload_types is not None:
        data = case((OutboxEvent.type.in_(list(payload_types)), OutboxEvent.data), else_=null())
        columns = (*_COLUMNS[:-1], type_coerce(data, OutboxEvent.data.type))
    query = select(*columns).where(OutboxEvent.position > after).order_by(OutboxEvent.position).limit(limit)
    if session.get_bind().dialect.name != "postgresql":
        return _records([tuple(r) for r in session.execute(query)])
    # clock_timestamp() is evaluated while the statement runs, so after its snapshot.
    rows = [tuple(r) for r in session.execute(query.add_columns(func.clock_timestamp()))]
    if not rows:
        return []
    gap = _first_gap(after, [int(r[0]) for r in rows])
    if gap is None:
        return _records([r[:-1] for r in rows])
    read_at: datetime = rows[0][-1]
    if session.execute(_OLD_WRITERS, {"read_at": read_at}).scalar():
        return _records([r[:-1] for r in rows[:gap]])
    last = int(rows[-1][0])
    again = select(*columns).where(OutboxEvent.position > after, OutboxEvent.position <= last)
    return _records([tuple(r) for r in session.execute(again.order_by(OutboxEvent.position))])
