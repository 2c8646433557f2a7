"""Test support for event delivery: a side-effect table, event writers, and one driver per
delivery backend so the contract tests can run the same assertions on each.

Imported by the tests (through this folder's conftest) and by `crash_worker.py` in a child
process, so both agree on the side-effect table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, insert, select, text, update
from sqlalchemy.orm import Session

from marketpilot.domain.events import InventoryChanged, ListingUpdated
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import Base, ConsumerOffset, OutboxEvent, ProcessedEvent, SerialKey
from marketpilot.platform.events import outbox
from marketpilot.platform.events.base import EventBus, Handler
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.dispatcher import Dispatcher
from marketpilot.platform.events.kafka_consumer import KafkaConsumerRunner
from marketpilot.platform.events.kafka_options import KafkaOptions
from marketpilot.platform.events.relay import Relay
from marketpilot.platform.events.retry import RetryPolicy
from marketpilot.platform.events.topics import topic_for

SOURCE = "/test/events"
UPDATED = ListingUpdated.TYPE
INVENTORY = InventoryChanged.TYPE

metadata = MetaData()
# What handlers did, written through the delivery session: a row per handler run that
# committed. A duplicate that slipped past the ledger would show up as a second row.
effects = Table(
    "test_event_effects",
    metadata,
    Column("id", SerialKey, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
)


def fresh_database(url: str) -> Database:
    """The marketplace schema plus the effects table, emptied (the database may be reused)."""
    db = Database(url)
    Base.metadata.create_all(db.engine)
    metadata.create_all(db.engine)
    with db.session() as s:
        tables = [Base.metadata.tables[n] for n in ("outbox", "consumer_offsets", "processed_events")] + [effects]
        if db.is_sqlite:
            for table in tables:
                s.execute(delete(table))
        else:
            s.execute(text(f"TRUNCATE {', '.join(t.name for t in tables)} RESTART IDENTITY"))
    return db


def write_updates(db: Database, subjects: Sequence[str], per_subject: int, *, start: int = 0) -> list[CloudEvent]:
    """`per_subject` ListingUpdated events per subject, interleaved, one transaction each.

    `seq` (in the data) grows in write order, so per-subject order can be checked.
    """
    events = []
    seq = start
    for _ in range(per_subject):
        for subject in subjects:
            with db.session() as s:
                events.append(
                    outbox.append(s, ListingUpdated(listing_id=subject, seller_id="s1", changes={"seq": seq}), SOURCE)
                )
            seq += 1
    return events


def write_inventory(db: Database, subjects: Sequence[str]) -> list[CloudEvent]:
    with db.session() as s:
        return outbox.append_many(
            s,
            [InventoryChanged(listing_id=x, quantity=1, reserved=0, available=1, reason="set") for x in subjects],
            SOURCE,
        )


def recorder(consumer: str) -> Handler:
    """A handler that records each event it handles in the effects table."""

    def handle(event: CloudEvent, session: Session) -> None:
        seq = event.data.get("changes", {}).get("seq", -1) if event.type == UPDATED else -1
        session.execute(
            insert(effects).values(consumer=consumer, event_id=event.id, subject=event.subject, seq=seq)
        )

    return handle


@dataclass(frozen=True)
class Effect:
    event_id: str
    subject: str
    seq: int


def effects_of(db: Database, consumer: str) -> list[Effect]:
    with db.session() as s:
        rows = s.execute(
            select(effects.c.event_id, effects.c.subject, effects.c.seq)
            .where(effects.c.consumer == consumer)
            .order_by(effects.c.id)
        )
        return [Effect(*r) for r in rows]


def seqs_by_subject(found: Sequence[Effect]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for e in found:
        out.setdefault(e.subject, []).append(e.seq)
    return out


def forget_ledger(db: Database, consumer: str) -> None:
    with db.session() as s:
        s.execute(delete(ProcessedEvent).where(ProcessedEvent.consumer == consumer))


def wait_for(condition: Callable[[], bool], step: Callable[[], object], *, what: str, limit: float = 60.0) -> None:
    """Call `step` until `condition` holds; fail naming `what` if it never does."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {limit:.0f}s")
        step()


def read_topic(opts: KafkaOptions, event_type: str, count: int) -> list[Message]:
    """Every message of the event type's topic, from the beginning (no consumer group)."""
    topic = topic_for(event_type, opts.topic_prefix)
    consumer = Consumer({"bootstrap.servers": opts.bootstrap, "group.id": "reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(opts.partitions)])
    messages: list[Message] = []
    try:
        wait_for(lambda: len(messages) >= count,
                 lambda: messages.extend(m for m in consumer.consume(100, 0.2) if m.error() is None),
                 what=f"{count} messages on {topic}")
        messages.extend(m for m in consumer.consume(100, 0.5) if m.error() is None)  # nothing more?
    finally:
        consumer.close()
    return messages


class Delivery(Protocol):
    """One delivery backend, driven step by step by a test."""

    db: Database

    def start(self, bus: EventBus, retry: RetryPolicy) -> None: ...
    def step(self) -> None: ...
    def settle(self) -> None: ...
    def restart(self) -> None: ...
    def redeliver_everything(self) -> None: ...
    def duplicates_skipped(self) -> int: ...
    def close(self) -> None: ...


def deliver_until(delivery: Delivery, condition: Callable[[], bool], what: str) -> None:
    wait_for(condition, delivery.step, what=what)


class EmbeddedDelivery:
    """The outbox dispatcher, in this process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._bus = EventBus()
        self._retry = RetryPolicy()
        self._dispatcher: Dispatcher | None = None

    def start(self, bus: EventBus, retry: RetryPolicy) -> None:
        self._bus, self._retry = bus, retry
        # A small batch so that every test crosses batch boundaries.
        self._dispatcher = Dispatcher(self.db, bus, batch_size=7, retry=retry)

    def _current(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("start() the delivery first")
        return self._dispatcher

    def step(self) -> None:
        if self._current().run_once() == 0:
            time.sleep(0.01)

    def settle(self) -> None:
        """Deliver until every consumer's offset is at the head of the outbox."""
        wait_for(lambda: not any(self._current().lag().values()), self.step, what="consumer lag 0")

    def restart(self) -> None:
        self.start(self._bus, self._retry)

    def redeliver_everything(self) -> None:
        with self.db.session() as s:
            s.execute(update(ConsumerOffset).values(position=0))

    def duplicates_skipped(self) -> int:
        return sum(x.duplicates for x in self._current().stats.values())

    def close(self) -> None:
        self._dispatcher = None


@dataclass
class DistributedDelivery:
    """Outbox -> relay -> Kafka (Tansu) -> one consumer group per subscriber."""

    db: Database
    bootstrap: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}.")
    _relay: Relay | None = None
    _runners: list[KafkaConsumerRunner] = field(default_factory=list)
    _bus: EventBus = field(default_factory=EventBus)
    _retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def options(self) -> KafkaOptions:
        return KafkaOptions(
            bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            partitions=3,
            session_timeout_ms=6000,
            consumer={"fetch.wait.max.ms": 50},
        )

    def start(self, bus: EventBus, retry: RetryPolicy) -> None:
        self._bus, self._retry = bus, retry
        self._relay = Relay(self.db, self.options, batch_size=11)
        self._runners = [KafkaConsumerRunner(self.db, s, self.options, batch_size=13, retry=retry) for s in bus]

    def step(self) -> None:
        if self._relay is None:
            raise RuntimeError("start() the delivery first")
        self._relay.run_once()
        for runner in self._runners:
            runner.run_once(0.1)

    def settle(self) -> None:
        """Deliver until the outbox is published and two rounds in a row find nothing to do.

        The second quiet round makes sure a fetch response newer than the last publish has
        refreshed the consumers' idea of the partition ends.
        """
        quiet = 0

        def idle() -> bool:
            return quiet >= 2

        def step() -> None:
            nonlocal quiet
            assert self._relay is not None
            published = self._relay.run_once()
            handled = sum(r.run_once(0.1) for r in self._runners)
            ready = all(r.assigned and r.lag() == 0 for r in self._runners)
            quiet = quiet + 1 if ready and not published and not handled else 0

        wait_for(idle, step, what="relay backlog and consumer lag 0")

    def restart(self) -> None:
        self._close_runners()
        self.start(self._bus, self._retry)

    def redeliver_everything(self) -> None:
        """Clear `published_at`, as a relay crash between flush and mark would."""
        with self.db.session() as s:
            s.execute(update(OutboxEvent).values(published_at=None))

    def duplicates_skipped(self) -> int:
        return sum(r.stats.duplicates for r in self._runners)

    def _close_runners(self) -> None:
        if self._relay is not None:
            self._relay.close()
        for runner in self._runners:
            runner.close()

    def close(self) -> None:
        self._close_runners()
