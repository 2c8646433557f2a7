"""Outbox retention: delete the events every reader is done with, once they are old enough.

The outbox is the system's event log, so it is kept for a window (``outbox_retention_days``,
30 by default) that the readers looking back in time rely on: the recommendation audit,
transparency and shadow replay read ``RecommendationServed`` slates by time, and can see
no further back than the window. Older than that, a row goes only when delivery is done
with it:

- embedded profile: every dispatcher consumer's offset is at or past it (a consumer that
  was registered once and then dropped from the code keeps its offset and so holds the
  outbox back: :class:`PurgeReport` names it);
- distributed profile: the relay has published it (``published_at`` set); Kafka's own
  retention then governs the topic.

A dead letter's event is kept whatever its age: listing and replaying dead letters
(:mod:`marketpilot.platform.events.deadletter`) reads its envelope from the outbox.

The newest row is always kept: SQLite hands out ``max(rowid) + 1`` for an ``INTEGER PRIMARY
KEY``, so deleting the newest row would let a new event reuse a position a consumer has
already passed.

Rows go oldest first in batches of their own transactions (on SQLite each holds the single
writer briefly, so orders keep flowing during a large first purge). The prefix to delete is
found from the start of the table and stops at the first row inside the window, so a purge
never scans the retained window.

The idempotency ledger (``processed_events``) is purged by the same job
(:func:`purge_ledger`): a row goes once it is older than ``processed_events_retention_days``
and its event has left the outbox. Embedded, an event that has left the outbox can never be
delivered again, so its ledger rows have nothing left to absorb. Distributed, Kafka may still
hold the event after the outbox row is gone: the ledger window must cover the topics'
retention (a consumer group rewound further back than the window would run handlers again).
Dead-letter markers stay (their events stay in the outbox anyway).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, exists, func, select

from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import ConsumerOffset, ProcessedEvent, utcnow
from marketpilot.platform.events.deadletter import DEAD_LETTER_PREFIX
from marketpilot.platform.events.outbox import OUTBOX

log = logging.getLogger(__name__)

BATCH = 5_000
LEDGER = cast(Table, ProcessedEvent.__table__)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge did (or, dry, would do)."""

    deleted: int
    eligible: int
    """Rows that were (dry: are) to go when the purge started."""
    cutoff: datetime
    up_to_position: int
    """The highest position a row may have to be deleted (0: none may)."""
    held_back_by: str | None
    """Why that bound is not higher: ``"retention"`` (rows inside the window follow),
    ``"newest"`` (the newest row is always kept), ``"consumer:NAME"`` (its offset), or None
    when the outbox is empty."""
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class _Bound:
    position: int
    reason: str | None


def _bound(db: Database, cutoff: datetime) -> _Bound:
    """The highest position that may go: below the first row inside the window, below the
    newest row, and at or below the slowest consumer's offset."""
    with db.read() as s:
        newest = s.scalar(select(func.max(OUTBOX.c.position)))
        if newest is None:
            return _Bound(0, None)
        bound = _Bound(int(newest) - 1, "newest")
        first_kept = s.scalar(select(OUTBOX.c.position).where(OUTBOX.c.time >= cutoff)
                              .order_by(OUTBOX.c.position).limit(1))
        if first_kept is not None and first_kept - 1 < bound.position:
            bound = _Bound(int(first_kept) - 1, "retention")
        slowest = s.execute(select(ConsumerOffset.consumer, ConsumerOffset.position)
                            .order_by(ConsumerOffset.position, ConsumerOffset.consumer).limit(1)).first()
        if slowest is not None and slowest.position < bound.position:
            bound = _Bound(int(slowest.position), f"consumer:{slowest.consumer}")
    return _Bound(max(bound.position, 0), bound.reason)


def _cutoff(older_than: timedelta, batch: int, now: datetime | None) -> datetime:
    """The purge's cutoff time, after checking its arguments."""
    if older_than <= timedelta(0):
        raise ValueError(f"older_than must be positive, got {older_than}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    return (now or utcnow()) - older_than


def purge_outbox(
    db: Database,
    *,
    older_than: timedelta,
    published_only: bool,
    now: datetime | None = None,
    batch: int = BATCH,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> PurgeReport:
    """Delete outbox rows older than `older_than` that every reader is done with (see the
    module docstring); `published_only` for a deployment whose relay publishes the outbox
    (the distributed profile). `progress(done, total)` after each batch; `stop` ends the
    purge between batches (what is deleted stays deleted, the rest waits for the next run)."""
    cutoff = _cutoff(older_than, batch, now)
    bound = _bound(db, cutoff)
    dead_letter = exists().where(ProcessedEvent.event_id == OUTBOX.c.event_id,
                                 ProcessedEvent.consumer.startswith(DEAD_LETTER_PREFIX))
    eligible = (OUTBOX.c.position <= bound.position) & ~dead_letter
    if published_only:
        eligible = eligible & OUTBOX.c.published_at.is_not(None)
    with db.read() as s:
        total = int(s.scalar(select(func.count()).select_from(OUTBOX).where(eligible)) or 0)
    if dry_run or total == 0:
        return PurgeReport(0, total, cutoff, bound.position, bound.reason, dry_run)
    oldest_first = select(OUTBOX.c.position).where(eligible).order_by(OUTBOX.c.position).limit(batch)
    statement = delete(OUTBOX).where(OUTBOX.c.position.in_(oldest_first.scalar_subquery()))
    deleted = 0
    while True:
        with db.write() as c:
            gone = c.execute(statement).rowcount
        deleted += gone
        if progress is not None:
            progress(min(deleted, total), total)
        if gone < batch or (stop is not None and stop.is_set()):
            break
    log.info("outbox retention: %d events older than %s deleted (held back by %s)", deleted, cutoff, bound.reason)
    return PurgeReport(deleted, total, cutoff, bound.position, bound.reason)


@dataclass(frozen=True, slots=True)
class LedgerPurgeReport:
    """What a ledger purge did (or, dry, would do)."""

    deleted: int
    eligible: int
    """Ledger rows that were (dry: are) to go when the purge started."""
    cutoff: datetime
    dry_run: bool = False


def purge_ledger(
    db: Database,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    batch: int = BATCH,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> LedgerPurgeReport:
    """Delete idempotency-ledger rows recorded more than `older_than` ago whose event is no
    longer in the outbox (see the module docstring), oldest first in batches of `batch`."""
    cutoff = _cutoff(older_than, batch, now)
    in_outbox = exists().where(OUTBOX.c.event_id == LEDGER.c.event_id)
    eligible = ((LEDGER.c.processed_at < cutoff) & ~LEDGER.c.consumer.startswith(DEAD_LETTER_PREFIX)
                & ~in_outbox)
    with db.read() as s:
        total = int(s.scalar(select(func.count()).select_from(LEDGER).where(eligible)) or 0)
    if dry_run or total == 0:
        return LedgerPurgeReport(0, total, cutoff, dry_run)
    # Keys first, then one DELETE per key in a batch (executemany): a composite-key IN
    # (subquery) is not portable across the two dialects.
    oldest_first = (select(LEDGER.c.consumer, LEDGER.c.event_id).where(eligible)
                    .order_by(LEDGER.c.processed_at).limit(batch))
    statement = delete(LEDGER).where(LEDGER.c.consumer == bindparam("c"), LEDGER.c.event_id == bindparam("e"))
    deleted = 0
    while True:
        with db.write() as c:
            keys = [{"c": row.consumer, "e": row.event_id} for row in c.execute(oldest_first)]
            if keys:
                c.execute(statement, keys)
        deleted += len(keys)
        if progress is not None:
            progress(min(deleted, total), total)
        if len(keys) < batch or (stop is not None and stop.is_set()):
            break
    log.info("ledger retention: %d processed-event rows older than %s deleted", deleted, cutoff)
    return LedgerPurgeReport(deleted, total, cutoff)


class OutboxRetention:
    """Runs :func:`purge_outbox`, then :func:`purge_ledger` (when `ledger_retention_days` is
    given), at start and then every `interval` seconds until stopped (the event worker's
    background job)."""

    def __init__(self, db: Database, *, retention_days: float, published_only: bool,
                 interval: float = 3600.0, ledger_retention_days: float | None = None) -> None:
        self.db = db
        self.older_than = timedelta(days=retention_days)
        self.published_only = published_only
        self.interval = interval
        self.ledger_older_than = None if ledger_retention_days is None else timedelta(days=ledger_retention_days)
        self.last: PurgeReport | None = None
        self.last_ledger: LedgerPurgeReport | None = None

    def run_once(self, stop: threading.Event | None = None) -> PurgeReport:
        self.last = purge_outbox(self.db, older_than=self.older_than, published_only=self.published_only, stop=stop)
        if self.ledger_older_than is not None and not (stop is not None and stop.is_set()):
            self.last_ledger = purge_ledger(self.db, older_than=self.ledger_older_than, stop=stop)
        return self.last

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once(stop)
            except Exception:  # a failed purge is retried at the next interval; delivery goes on
                log.exception("outbox retention: purge failed; next attempt in %.0f s", self.interval)
            stop.wait(self.interval)
