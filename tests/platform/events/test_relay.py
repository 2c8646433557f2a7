"""Outbox -> Kafka relay: message format, exact marking, several relays, failures."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from confluent_kafka import Message
from events_harness import SOURCE, UPDATED, Effect, read_topic, seqs_by_subject, write_updates
from sqlalchemy import func, select

from marketpilot.domain.events import ListingUpdated
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import OutboxEvent
from marketpilot.platform.events import CloudEvent, KafkaOptions, Relay, outbox


def options(bootstrap: str, **overrides: object) -> KafkaOptions:
    return KafkaOptions(bootstrap=bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=3, **overrides)  # type: ignore[arg-type]


def as_effects(messages: list[Message]) -> list[Effect]:
    events = [CloudEvent.from_kafka(m.value() or b"", m.headers()) for m in messages]
    return [Effect(e.id, e.subject, e.data["changes"]["seq"]) for e in events]


def unpublished(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None))) or 0)


def test_messages_carry_the_cloudevent_in_the_kafka_binary_binding(
    events_db: Database, kafka_bootstrap: str
) -> None:
    events = write_updates(events_db, ["l1", "l2"], per_subject=2)
    opts = options(kafka_bootstrap)
    relay = Relay(events_db, opts)
    try:
        assert relay.backlog() == 4
        assert relay.run_once() == 4
        assert relay.run_once() == 0 and relay.backlog() == 0
    finally:
        relay.close()

    messages = read_topic(opts, UPDATED, 4)
    assert len(messages) == 4
    by_id = {e.id: e for e in events}
    for message in messages:
        decoded = CloudEvent.from_kafka(message.value() or b"", message.headers())
        original = by_id[decoded.id]
        headers = dict(message.headers() or [])
        assert message.topic() == f"{opts.topic_prefix}listing"
        assert message.key() == original.subject.encode()
        assert headers["ce_type"] == UPDATED.encode() and headers["ce_source"] == SOURCE.encode()
        assert headers["ce_specversion"] == b"1.0" and headers["content-type"] == b"application/json"
        assert decoded == original


def test_a_row_committed_late_inside_a_published_range_is_published_too(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    opts = options(kafka_bootstrap)
    relay = Relay(pg_db, opts)
    try:
        write_updates(pg_db, ["early"], per_subject=1)
        with pg_db.session() as held:
            outbox.append(held, ListingUpdated(listing_id="late", seller_id="s1", changes={"seq": 1}), SOURCE)
            write_updates(pg_db, ["after"], per_subject=1, start=2)
            assert relay.run_once() == 2  # positions 1 and 3; 2 is still being written
        assert unpublished(pg_db) == 1
        assert relay.run_once() == 1
    finally:
        relay.close()
    assert sorted(e.subject for e in as_effects(read_topic(opts, UPDATED, 3))) == ["after", "early", "late"]


def test_relays_sharing_the_outbox_publish_each_row_once_in_subject_order(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    events = write_updates(pg_db, ["a", "b", "c", "d"], per_subject=5)
    opts = options(kafka_bootstrap)
    first, second = Relay(pg_db, opts, batch_size=2), Relay(pg_db, opts, batch_size=6)
    try:
        with pg_db.session() as s:
            claimed = first.claim(s)  # rows 1-2 locked: subjects a, b
            # The second relay skips them and claims rows 3-8 (c, d, a, b, c, d); it must
            # hold back a and b, whose earlier events the first relay has not published yet.
            assert second.run_once() == 4
            first.publish(claimed)
            first.mark(s, claimed)
        while second.run_once() or first.run_once():
            pass
    finally:
        first.close()
        second.close()
    assert unpublished(pg_db) == 0
    found = as_effects(read_topic(opts, UPDATED, len(events)))
    assert Counter(e.event_id for e in found) == Counter(e.id for e in events)
    for subject, seqs in seqs_by_subject(found).items():
        assert seqs == sorted(seqs), f"{subject} published out of order: {seqs}"


def test_a_batch_kafka_refuses_stays_unpublished(pg_db: Database, kafka_bootstrap: str) -> None:
    write_updates(pg_db, ["ok"], per_subject=2)
    with pg_db.session() as s:
        huge = ListingUpdated(listing_id="huge", seller_id="s1", changes={"blob": "x" * 20_000})
        outbox.append(s, huge, SOURCE)
    relay = Relay(pg_db, options(kafka_bootstrap, producer={"message.max.bytes": 10_000}))
    try:
        with pytest.raises(Exception, match="[Ss]ize"):
            relay.run_once()
    finally:
        relay.close()
    assert unpublished(pg_db) == 3


def test_an_sqlite_outbox_is_relayed_in_order(sqlite_events_db: Database, kafka_bootstrap: str) -> None:
    """Claim and mark are separate short transactions on SQLite; the result is the same."""
    write_updates(sqlite_events_db, ["x"], per_subject=3)
    opts = options(kafka_bootstrap)
    relay = Relay(sqlite_events_db, opts)
    try:
        assert relay.run_once() == 3
    finally:
        relay.close()
    assert [e.seq for e in as_effects(read_topic(opts, UPDATED, 3))] == [0, 1, 2]



def test_drain_overlaps_marking_with_the_next_batch_and_keeps_order(
    events_db: Database, kafka_bootstrap: str
) -> None:
    events = write_updates(events_db, ["a", "b", "c"], per_subject=13)
    opts = options(kafka_bootstrap)
    relay = Relay(events_db, opts, batch_size=7)
    try:
        assert relay.drain() == len(events)
        assert relay.drain() == 0
    finally:
        relay.close()
    assert unpublished(events_db) == 0
    found = as_effects(read_topic(opts, UPDATED, len(events)))
    assert Counter(e.event_id for e in found) == Counter(e.id for e in events)
    for subject, seqs in seqs_by_subject(found).items():
        assert seqs == sorted(seqs), f"{subject} published out of order: {seqs}"
