"""The embedded profile's event delivery: the outbox table, read in process.

Each subscriber is a consumer with its own offset in `consumer_offsets` (the last outbox
position it has finished). One delivery is one transaction holding the handler's writes, the
idempotency-ledger rows and the new offset, so a crash anywhere loses nothing and a restart
resumes at the stored offset. Events reach a consumer in `position` order, which is commit
order per aggregate; a failing event blocks its consumer (never the others) until a retry
succeeds or the retry budget sends it to the dead letters.

On PostgreSQL several dispatchers may share one database (several embedded API processes):
a consumer's offset row is locked with ``FOR UPDATE SKIP LOCKED`` for the duration of a
delivery, so each consumer is served by one dispatcher at a time and the others move on.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import ConsumerOffset, OutboxEvent, utcnow
from marketpilot.platform.events import deadletter
from marketpilot.platform.events.base import EventBus, Subscription
from marketpilot.platform.events.horizon import OutboxRecord, read_committed
from marketpilot.platform.events.ledger import DeliveryStats, HandlerFailure, handle_batch
from marketpilot.platform.events.retry import Backoff, RetryPolicy

log = logging.getLogger(__name__)


def consumer_lag(db: Database, consumers: Iterable[str]) -> dict[str, int]:
    """Outbox events each consumer has not finished: max(outbox.position) - its offset.

    A consumer that never ran has offset 0, so its lag is the whole outbox.
    """
    names = list(consumers)
    with db.session() as s:
        head = int(s.scalar(select(func.max(OutboxEvent.position))) or 0)
        query = select(ConsumerOffset.consumer, ConsumerOffset.position).where(ConsumerOffset.consumer.in_(names))
        offsets = {consumer: int(position) for consumer, position in s.execute(query)}
    return {name: max(head - int(offsets.get(name, 0)), 0) for name in names}


@dataclass
class _Pass:
    delivered: int = 0
    advanced: bool = False


class Dispatcher:
    """Delivers outbox events to the subscribers of `bus`, at least once, in position order."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        batch_size: int = 500,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self._backoff = Backoff(self.retry, clock)
        self._known: set[str] = set()
        self._turn = -1
        self.stats: dict[str, DeliveryStats] = {s.name: DeliveryStats() for s in bus}

    # -- public API -------------------------------------------------------------------------

    def run_once(self, max_events: int = 1000) -> int:
        """One pass over the consumers (at most a batch each, at most `max_events` in all);
        returns how many events handlers processed."""
        return self._pass(max_events).delivered

    def run_forever(self, stop: threading.Event, poll_interval: float = 0.2) -> None:
        """Deliver until `stop` is set, sleeping `poll_interval` when there is nothing to do.

        A database error is logged and retried with growing pauses rather than ending the
        loop: the outbox keeps the events, so delivery simply resumes when the database does.
        """
        errors = 0
        while not stop.is_set():
            try:
                result = self._pass(sys.maxsize)
                errors = 0
            except Exception:
                errors += 1
                pause = min(poll_interval * 2**errors, 30.0)
                log.exception("event dispatcher pass failed; retrying in %.1fs", pause)
                stop.wait(pause)
                continue
            if not result.advanced:
                retry_in = self._backoff.next_retry_in()
                stop.wait(poll_interval if retry_in is None else min(poll_interval, retry_in))

    def start(self, stop: threading.Event, poll_interval: float = 0.2) -> threading.Thread:
        """Run :meth:`run_forever` in a daemon thread (the API process in the embedded profile)."""
        thread = threading.Thread(
            target=self.run_forever, args=(stop, poll_interval), name="marketpilot-dispatcher", daemon=True
        )
        thread.start()
        return thread

    def lag(self) -> dict[str, int]:
        return consumer_lag(self.db, (s.name for s in self.bus))

    # -- one pass ---------------------------------------------------------------------------

    def _pass(self, max_events: int) -> _Pass:
        result = _Pass()
        # Rotate who goes first, so a capped pass cannot starve the consumers at the end.
        everyone = self.bus.subscriptions
        self._turn = (self._turn + 1) % max(len(everyone), 1)
        everyone = everyone[self._turn :] + everyone[: self._turn]
        subscriptions = [s for s in everyone if not self._backoff.blocked(s.name)]
        self._ensure_offsets(subscriptions)
        reads: dict[int, list[OutboxRecord]] = {}  # consumers at the same offset share a read
        for subscription in subscriptions:
            budget = max_events - result.delivered
            if budget <= 0:
                break
            delivered, advanced = self._deliver(subscription, reads, budget)
            result.delivered += delivered
            result.advanced = result.advanced or advanced
        return result

    def _deliver(
        self, subscription: Subscription, reads: dict[int, list[OutboxRecord]], budget: int
    ) -> tuple[int, bool]:
        with self.db.session() as s:
            offset = self._lock_offset(s, subscription.name)
            if offset is None:  # another dispatcher is delivering to this consumer right now
                return 0, False
            if offset not in reads:
                reads[offset] = read_committed(s, offset, self.batch_size)
            records = _within_budget(reads[offset], subscription, budget)
            if not records:
                return 0, False
            outcome = handle_batch(s, subscription, [r.event for r in records])
            self._stats(subscription).add(outcome)
            if outcome.processed:
                self._set_offset(s, subscription.name, records[outcome.processed - 1].position)
        advanced = outcome.processed > 0
        if outcome.failure is None:
            self._backoff.clear(subscription.name)
        else:
            advanced = self._failed(subscription, records[outcome.failure.index], outcome.failure) or advanced
        return outcome.handled, advanced

    def _failed(self, subscription: Subscription, record: OutboxRecord, failure: HandlerFailure) -> bool:
        """Schedule a retry, or dead-letter the event once the budget is spent (returns True)."""
        attempts = self._backoff.record_failure(subscription.name, record.event.id)
        if not self._backoff.exhausted(attempts):
            log.warning(
                "consumer %s: handler failed on event %s (%s), attempt %d of %d; retrying in %.2fs",
                subscription.name, record.event.id, record.event.type, attempts,
                self.retry.max_attempts, self.retry.delay(attempts), exc_info=failure.error,
            )
            return False
        with self.db.session() as s:
            offset = self._lock_offset(s, subscription.name)
            if offset is None or offset >= record.position:
                return False
            deadletter.record(s, subscription.name, record.event, failure.error, attempts)
            self._set_offset(s, subscription.name, record.position)
        self._backoff.clear(subscription.name)
        self._stats(subscription).dead_lettered += 1
        return True

    def _stats(self, subscription: Subscription) -> DeliveryStats:
        return self.stats.setdefault(subscription.name, DeliveryStats())

    # -- offsets ----------------------------------------------------------------------------

    def _ensure_offsets(self, subscriptions: list[Subscription]) -> None:
        missing = [s.name for s in subscriptions if s.name not in self._known]
        if not missing:
            return
        rows = [{"consumer": name, "position": 0, "updated_at": utcnow()} for name in missing]
        with self.db.session() as s:
            insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
            s.execute(insert(ConsumerOffset).values(rows).on_conflict_do_nothing())
        self._known.update(missing)

    @staticmethod
    def _lock_offset(session: Session, consumer: str) -> int | None:
        query = select(ConsumerOffset.position).where(ConsumerOffset.consumer == consumer)
        # SQLite ignores FOR UPDATE; its BEGIN IMMEDIATE already serialises deliveries.
        position = session.scalar(query.with_for_update(skip_locked=True))
        return None if position is None else int(position)

    @staticmethod
    def _set_offset(session: Session, consumer: str, position: int) -> None:
        session.execute(
            update(ConsumerOffset)
            .where(ConsumerOffset.consumer == consumer)
            .values(position=position, updated_at=utcnow())
        )


def _within_budget(records: list[OutboxRecord], subscription: Subscription, budget: int) -> list[OutboxRecord]:
    """The leading records holding at most `budget` events the subscription wants."""
    wanted = 0
    for index, record in enumerate(records):
        if subscription.wants(record.event.type):
            if wanted == budget:
                return records[:index]
            wanted += 1
    return records

