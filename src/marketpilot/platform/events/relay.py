"""The distributed profile's publisher: outbox rows to Kafka, at least once, in order.

One round reads a batch of unpublished rows in `position` order, produces them all
(idempotent producer, acks=all), waits for the broker to acknowledge every one (flush), and
only then marks the batch published with one UPDATE. A crash between the flush and the
UPDATE publishes the batch again on restart; consumers absorb the copies through the
idempotency ledger. Nothing is lost: a row is marked only after Kafka has it.

Messages: topic per event family (see :mod:`topics`), key = subject (aggregate id), value =
the JSON data exactly as stored, CloudEvents attributes as ``ce_*`` headers (Kafka binary
binding). The data is read as text and never decoded, which is most of the relay's speed.

Several relays on PostgreSQL: the batch is claimed with ``FOR UPDATE SKIP LOCKED`` and the
row locks are held until the batch is marked, so two relays never publish the same row in the
normal case. Taking the first unlocked rows is not enough for order, though: relay B could
publish a listing's second event while relay A still holds its first. So B drops from its
batch every subject that still has an unpublished row below B's last position that B does
not hold; those rows wait for the next round. On SQLite (one process, one relay) the claim
and the mark are separate short transactions so the database write lock is never held while
waiting for Kafka.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from sqlalchemy import and_, or_, text, update
from sqlalchemy.orm import Session

from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import OutboxEvent
from marketpilot.platform.events.cloudevent import SPECVERSION, kafka_headers
from marketpilot.platform.events.horizon import as_utc
from marketpilot.platform.events.kafka_options import KafkaOptions
from marketpilot.platform.events.topics import Topics

log = logging.getLogger(__name__)

# Plain SQL, untyped: the rows go straight to Kafka, so SQLAlchemy's per-row type processing
# (and decoding the JSON data only to encode it again) would be most of the relay's CPU time.
#
# Every query over unpublished rows orders by (published_at, position), the columns of
# `ix_outbox_unpublished`, so the index is used whatever the statistics say. Ordered by
# position alone, PostgreSQL may walk the primary key from the first row ever written and
# skip every published one, which makes each round slower as the outbox grows (and does,
# right after a large backlog has been analysed).
_CLAIM = (
    "SELECT position, event_id, source, type, subject, time, CAST(data AS TEXT) FROM outbox "
    "WHERE published_at IS NULL ORDER BY published_at, position LIMIT :limit"
)
_BACKLOG = text(
    "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE published_at IS NULL ORDER BY published_at, position) AS u"
)

# PostgreSQL only: the ordering guard of concurrent relays. Scalar subqueries rather than
# EXISTS, which would discard the ORDER BY that picks the index.
_EARLIER_UNPUBLISHED = text(
    """
    SELECT (SELECT position FROM outbox WHERE published_at IS NULL AND position < :low
            ORDER BY published_at, position LIMIT 1) IS NOT NULL
        OR (SELECT position FROM outbox WHERE published_at IS NULL AND position > :high AND position < :first
            ORDER BY published_at, position LIMIT 1) IS NOT NULL
    """
)
_UNPUBLISHED_BEFORE = text(
    "SELECT position, subject FROM outbox WHERE published_at IS NULL AND position < :last "
    "ORDER BY published_at, position"
)


class RelayError(RuntimeError):
    """Kafka did not acknowledge a batch; it stays unpublished and is retried."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    position: int
    event_id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: str


class Relay:
    """Publishes the outbox to Kafka. Use one per process; several processes may share a DB."""

    def __init__(
        self,
        db: Database,
        options: KafkaOptions,
        *,
        batch_size: int = 5000,
        flush_timeout: float = 30.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.db = db
        self.options = options
        self.batch_size = batch_size
        self.flush_timeout = flush_timeout
        self.topics = Topics(options)
        self._locking = db.engine.dialect.name == "postgresql"
        self._claim = text(_CLAIM + (" FOR UPDATE SKIP LOCKED" if self._locking else ""))
        self._errors: list[KafkaError] = []
        self._producer = self._new_producer()
        self._topic_of: dict[str, str] = {}

    # -- public API -------------------------------------------------------------------------

    def run_once(self) -> int:
        """Publish one batch; returns how many events Kafka acknowledged (0 if none waiting)."""
        if self._locking:
            with self.db.session() as s:
                rows = self.claim(s)
                if rows:
                    self.publish(rows)
                    self.mark(s, rows)
            return len(rows)
        with self.db.session() as s:
            rows = self.claim(s)
        if rows:
            self.publish(rows)
            with self.db.session() as s:
                self.mark(s, rows)
        return len(rows)

    def drain(self, stop: threading.Event | None = None) -> int:
        """Publish batches until none is left (or `stop` is set); returns how many were published.

        On PostgreSQL the UPDATE marking batch k runs, with the commit that releases its row
        locks, in a helper thread on its own connection while batch k+1 is claimed and
        produced: for this table the UPDATE costs about as much as everything else, so
        overlapping them nearly doubles throughput. Batch k+1 is produced only after Kafka
        acknowledged batch k, so order is unchanged; if marking k fails, k is published again
        later and consumers skip the copies.
        """
        total = 0
        if not self._locking:
            while stop is None or not stop.is_set():
                published = self.run_once()
                if not published:
                    break
                total += published
            return total
        marking: _Marking | None = None
        try:
            while stop is None or not stop.is_set():
                transaction = ExitStack()
                session = transaction.enter_context(self.db.session())
                try:
                    rows = self.claim(session, held=marking.positions if marking else [])
                    if rows:
                        self.publish(rows)
                except BaseException as exc:
                    _close(transaction, exc)
                    raise
                if not rows:
                    transaction.close()
                    break
                if marking is not None:
                    marking.wait()
                marking = _Marking(self, transaction, session, rows)
                total += len(rows)
        except BaseException:
            if marking is not None:
                marking.wait(quiet=True)
            raise
        if marking is not None:
            marking.wait()
        return total

    def run_forever(self, stop: threading.Event, poll_interval: float = 0.1) -> None:
        """Publish until `stop` is set; a failed round is logged and retried with backoff."""
        errors = 0
        while not stop.is_set():
            try:
                self.drain(stop)
                errors = 0
            except Exception:
                errors += 1
                pause = min(poll_interval * 2**errors, 30.0)
                log.exception("outbox relay round failed; retrying in %.1fs", pause)
                stop.wait(pause)
                continue
            stop.wait(poll_interval)

    def backlog(self) -> int:
        """Outbox rows not yet published (the relay's lag)."""
        with self.db.session() as s:
            return int(s.execute(_BACKLOG).scalar() or 0)

    def close(self) -> None:
        """Flush messages still in flight and release the producer; the relay is done after.

        Anything not acknowledged stays unpublished in the outbox and is sent again later.
        """
        self._producer.flush(self.flush_timeout)
        self._producer.close()

    # -- the three steps of a round ---------------------------------------------------------

    def claim(self, session: Session, *, held: list[int] | None = None) -> list[OutboxRow]:
        """The next batch of unpublished rows, locked on PostgreSQL, in position order.

        `held`: positions this relay published and is still marking (see :meth:`drain`).
        """
        result = session.connection().execute(self._claim, {"limit": self.batch_size})
        rows = [OutboxRow(p, i, src, typ, sub, _timestamp(t), d) for p, i, src, typ, sub, t, d in result]
        if self._locking and rows:
            rows = self._keep_subject_order(session, rows, held or [])
        return rows

    def publish(self, rows: list[OutboxRow]) -> None:
        """Produce every row and wait until Kafka has acknowledged all of them."""
        topics = {t: self._topic(t) for t in {r.type for r in rows}}
        self.topics.ensure(topics.values())
        self._errors.clear()
        produce = self._producer.produce
        for r in rows:
            headers = kafka_headers(r.event_id, r.source, r.type, r.subject, r.time, SPECVERSION)
            try:
                produce(topics[r.type], r.data.encode(), r.subject.encode(), headers=headers)
            except BufferError:
                # The local queue is full: let librdkafka send, then try once more.
                self._producer.poll(1.0)
                produce(topics[r.type], r.data.encode(), r.subject.encode(), headers=headers)
        remaining = self._producer.flush(self.flush_timeout)
        if remaining or self._errors:
            self._fail(len(rows), remaining)

    def mark(self, session: Session, rows: list[OutboxRow]) -> None:
        """Set `published_at` for exactly these rows, by position range where contiguous."""
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None), _positions(sorted(r.position for r in rows)))
            .values(published_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )

    # -- internals --------------------------------------------------------------------------

    def _topic(self, event_type: str) -> str:
        topic = self._topic_of.get(event_type)
        if topic is None:
            topic = self._topic_of[event_type] = self.topics.for_type(event_type)
        return topic

    def _keep_subject_order(self, session: Session, rows: list[OutboxRow], held: list[int]) -> list[OutboxRow]:
        """Drop subjects that have an earlier unpublished row held by another relay.

        With one relay, the claimed rows are contiguous and nothing unpublished precedes them
        but the batch this relay is still marking; two index probes show that, and only
        otherwise are subjects compared.
        """
        first, last = rows[0].position, rows[-1].position
        contiguous = last - first + 1 == len(rows)
        # Probe below the held run and between it and this batch (an empty range if none held).
        low, high = (held[0], held[-1]) if held else (first, first)
        if contiguous and high - low + 1 == max(len(held), 1) and high <= first:
            if not session.execute(_EARLIER_UNPUBLISHED, {"low": low, "high": high, "first": first}).scalar():
                return rows
        ours = {r.position for r in rows}.union(held)
        subjects = {r.subject for r in rows}
        earlier = session.execute(_UNPUBLISHED_BEFORE, {"last": last})
        blocked = {subject for position, subject in earlier if position not in ours and subject in subjects}
        if not blocked:
            return rows
        log.info("relay: %d subjects wait for another relay's batch to keep their order", len(blocked))
        return [r for r in rows if r.subject not in blocked]

    def _new_producer(self) -> Producer:
        config = self.options.producer_config()
        config.setdefault("delivery.report.only.error", True)
        config["on_delivery"] = self._on_delivery
        return Producer(config)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._errors.append(error)

    def _fail(self, total: int, remaining: int) -> None:
        first = self._errors[0] if self._errors else None
        if first is not None and first.fatal():
            # An idempotent producer that hit a fatal error cannot send again; start afresh.
            log.error("Kafka producer hit a fatal error (%s); creating a new producer", first)
            self._producer = self._new_producer()
        raise RelayError(
            f"Kafka did not acknowledge {len(self._errors) + remaining} of {total} events "
            f"({remaining} still queued after {self.flush_timeout}s; first error: {first}); "
            "the batch stays unpublished and will be sent again"
        )


class _Marking:
    """Marks one acknowledged batch published and commits its transaction, in a thread."""

    def __init__(self, relay: Relay, transaction: ExitStack, session: Session, rows: list[OutboxRow]) -> None:
        self.positions = [r.position for r in rows]
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(relay, transaction, session, rows), name="marketpilot-relay-mark", daemon=True
        )
        self._thread.start()

    def _run(self, relay: Relay, transaction: ExitStack, session: Session, rows: list[OutboxRow]) -> None:
        try:
            relay.mark(session, rows)
        except BaseException as exc:
            self._error = exc
            _close(transaction, exc)
            return
        try:
            transaction.close()
        except BaseException as exc:
            self._error = exc

    def wait(self, *, quiet: bool = False) -> None:
        """Wait for the commit; re-raise its error unless `quiet` (another error is on its way)."""
        self._thread.join()
        if self._error is not None and not quiet:
            raise self._error


def _close(transaction: ExitStack, error: BaseException) -> None:
    """Roll back a transaction held open in an ExitStack because of `error`."""
    try:
        transaction.__exit__(type(error), error, error.__traceback__)
    except BaseException:
        log.warning("relay: rolling back after %r failed too", error, exc_info=True)


def _timestamp(value: datetime | str) -> datetime:
    """PostgreSQL returns aware datetimes; SQLite returns the stored naive UTC text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)


def _positions(positions: list[int]) -> Any:
    """A WHERE clause for exactly `positions`: BETWEEN per contiguous run, IN otherwise."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and p == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    if len(runs) <= 32:
        return or_(*[and_(OutboxEvent.position >= lo, OutboxEvent.position <= hi) for lo, hi in runs])
    return OutboxEvent.position.in_(positions)
