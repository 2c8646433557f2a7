"""The distributed profile's delivery: one Kafka consumer group per subscriber.

Messages are decoded from the CloudEvents binary binding and handed to the same handlers, in
the same kind of database transaction with the same idempotency ledger as the embedded
dispatcher (:func:`ledger.handle_batch`). The Kafka offset is committed only after that
transaction has committed, so a crash in between redelivers events the ledger then skips.

Order and failure work per partition (a partition holds whole aggregates, since the key is
the subject): a failing event is sought back to and its partition paused until the retry is
due, while the other partitions go on. After the retry budget the event is dead-lettered (see
:mod:`deadletter`) and its offset committed past it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition

from marketpilot.platform.db import Database
from marketpilot.platform.events import deadletter
from marketpilot.platform.events.base import Subscription
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.kafka_options import KafkaOptions
from marketpilot.platform.events.ledger import DeliveryStats, handle_batch
from marketpilot.platform.events.retry import Backoff, RetryPolicy
from marketpilot.platform.events.topics import Topics, topics_for

log = logging.getLogger(__name__)

Lane = tuple[str, int]  # (topic, partition)


@dataclass
class _Lane:
    """The messages of one partition in this round, decoded; `start`/`end` bound their offsets."""

    start: int
    messages: list[Message] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)
    end: int = 0


class KafkaConsumerRunner:
    """Consumes the topics of one subscription's event types and runs its handler."""

    def __init__(
        self,
        db: Database,
        subscription: Subscription,
        options: KafkaOptions,
        *,
        batch_size: int = 500,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.db = db
        self.subscription = subscription
        self.options = options
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self._backoff = Backoff(self.retry, clock)
        self._paused: dict[Lane, int] = {}  # lane -> offset of the event to retry
        self.stats = DeliveryStats()
        self.topics = sorted(topics_for(subscription.types, options.topic_prefix))
        Topics(options).ensure(self.topics)
        self._consumer = Consumer(options.consumer_config(subscription.name))
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._closed = False

    # -- public API -------------------------------------------------------------------------

    def run_once(self, timeout: float = 0.5) -> int:
        """Consume one batch (waiting up to `timeout` s); returns how many events handlers processed."""
        self._resume_due()
        messages = self._consumer.consume(self.batch_size, timeout)
        lanes: dict[Lane, _Lane] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_error(error)
                continue
            lane = _lane(message)
            if lane in self._paused:  # fetched before the pause; it will be fetched again
                continue
            batch = lanes.setdefault(lane, _Lane(start=_offset(message)))
            batch.end = _offset(message) + 1
            event = self._decode(message)
            if event is not None:
                batch.messages.append(message)
                batch.events.append(event)
        delivered = 0
        commits: list[TopicPartition] = []
        done: set[Lane] = set()
        try:
            for lane, batch in lanes.items():
                delivered += self._deliver(lane, batch, commits)
                done.add(lane)
        except Exception:
            # The database failed (handler errors never get here): the consumer's position has
            # moved past these messages, so rewind it or a later commit would skip them.
            for lane, batch in lanes.items():
                if lane not in done:
                    self._consumer.seek(TopicPartition(lane[0], lane[1], batch.start))
            raise
        finally:
            if commits:
                self._commit(commits)
        return delivered

    def run_forever(self, stop: threading.Event, timeout: float = 0.5) -> None:
        """Consume until `stop` is set; leaves the group cleanly on the way out."""
        try:
            while not stop.is_set():
                try:
                    self.run_once(timeout)
                except KafkaException as exc:
                    if exc.args and isinstance(exc.args[0], KafkaError) and exc.args[0].fatal():
                        raise  # this consumer cannot recover; let the worker restart
                    log.exception("consumer %s: round failed; retrying", self.subscription.name)
                    stop.wait(min(max(timeout, 0.1) * 4, 5.0))
                except Exception:
                    log.exception("consumer %s: round failed; retrying", self.subscription.name)
                    stop.wait(min(max(timeout, 0.1) * 4, 5.0))
        finally:
            self.close()

    def lag(self) -> int:
        """Messages in the assigned partitions not yet consumed: high watermark - position.

        Uses the high watermark cached from fetch responses, falling back to asking the broker.
        (Tansu 0.6 answers a ListOffsets "latest" with the start of the last record batch plus
        one, which undercounts; fetch responses carry the right value.)
        """
        assignment = self._consumer.assignment()
        if not assignment:
            return 0
        positions = self._consumer.position(assignment)
        committed: dict[Lane, int] = {}
        if any(p.offset < 0 for p in positions):
            committed = {(p.topic, p.partition): p.offset for p in self._consumer.committed(assignment, timeout=10)}
        total = 0
        for tp in positions:
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                low, high = self._consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            position = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), OFFSET_INVALID)
            if position < 0:
                position = max(low, 0)
            total += max(high - position, 0)
        return total

    @property
    def assigned(self) -> bool:
        """True once the group has given this consumer at least one partition."""
        return bool(self._consumer.assignment())

    def close(self) -> None:
        """Leave the consumer group (a rebalance hands the partitions to the others now)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    # -- internals --------------------------------------------------------------------------

    def _deliver(self, lane: Lane, batch: _Lane, commits: list[TopicPartition]) -> int:
        with self.db.session() as s:
            outcome = handle_batch(s, self.subscription, batch.events)
        self.stats.add(outcome)
        failure = outcome.failure
        if failure is None:
            self._backoff.clear(lane)
            commits.append(TopicPartition(lane[0], lane[1], batch.end))
            return outcome.handled
        offset = _offset(batch.messages[failure.index])
        attempts = self._backoff.record_failure(lane, failure.event.id)
        if self._backoff.exhausted(attempts):
            with self.db.session() as s:
                deadletter.record(s, self.subscription.name, failure.event, failure.error, attempts)
            self._backoff.clear(lane)
            self.stats.dead_lettered += 1
            commits.append(TopicPartition(lane[0], lane[1], offset + 1))
            # The rest of this lane's batch was not delivered; fetch it again.
            self._seek(lane, offset + 1, pause=False)
            return outcome.handled
        log.warning(
            "consumer %s: handler failed on event %s (%s) at %s[%d]@%d, attempt %d of %d; retrying in %.2fs",
            self.subscription.name, failure.event.id, failure.event.type, lane[0], lane[1], offset,
            attempts, self.retry.max_attempts, self.retry.delay(attempts), exc_info=failure.error,
        )
        if failure.index:
            commits.append(TopicPartition(lane[0], lane[1], offset))
        self._seek(lane, offset, pause=True)
        return outcome.handled

    def _seek(self, lane: Lane, offset: int, *, pause: bool) -> None:
        partition = TopicPartition(lane[0], lane[1], offset)
        if pause:
            self._consumer.pause([partition])
            self._paused[lane] = offset
        self._consumer.seek(partition)

    def _resume_due(self) -> None:
        due = [lane for lane in self._paused if not self._backoff.blocked(lane)]
        if due:
            self._consumer.resume([TopicPartition(t, p) for t, p in due])
            for lane in due:
                del self._paused[lane]

    def _commit(self, offsets: list[TopicPartition]) -> None:
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Typically a rebalance took the partition away; its new owner starts from the
            # last committed offset and the ledger skips what this consumer already handled.
            log.warning("consumer %s: offset commit failed (%s); events will be redelivered",
                        self.subscription.name, exc)

    def _decode(self, message: Message) -> CloudEvent | None:
        """The event, or None for a message no handler could ever accept (logged, skipped)."""
        try:
            return CloudEvent.from_kafka(message.value() or b"", message.headers())
        except Exception:
            log.error(
                "consumer %s: skipping %s[%d]@%d, which is not a CloudEvents binary-mode message",
                self.subscription.name, message.topic(), message.partition(), message.offset(), exc_info=True,
            )
            return None

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer %s: Kafka reported %s", self.subscription.name, error)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            lane = (tp.topic, tp.partition)
            self._paused.pop(lane, None)
            self._backoff.clear(lane)


def _lane(message: Message) -> Lane:
    topic, partition = message.topic(), message.partition()
    if topic is None or partition is None:
        raise ValueError("a consumed Kafka message has no topic or partition")
    return topic, partition


def _offset(message: Message) -> int:
    offset = message.offset()
    if offset is None:
        raise ValueError("a consumed Kafka message has no offset")
    return offset
