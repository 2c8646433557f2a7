"""Kafka consumer runner specifics; the shared delivery contract is in test_delivery_contract."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer
from events_harness import UPDATED, effects_of, recorder, wait_for, write_updates

from marketpilot.platform.db import Database
from marketpilot.platform.events import EventBus, KafkaConsumerRunner, KafkaOptions, Relay, topic_for


def single_partition(bootstrap: str) -> KafkaOptions:
    return KafkaOptions(
        bootstrap=bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=1,
        consumer={"fetch.wait.max.ms": 50},
    )


def test_lag_is_the_distance_from_the_position_to_the_partition_end(pg_db: Database, kafka_bootstrap: str) -> None:
    opts = single_partition(kafka_bootstrap)
    write_updates(pg_db, ["a", "b"], per_subject=10)
    relay = Relay(pg_db, opts)
    relay.run_once()
    relay.close()
    bus = EventBus()
    runner = KafkaConsumerRunner(pg_db, bus.subscribe("audit", [UPDATED], recorder("audit")), opts, batch_size=5)
    try:
        wait_for(lambda: runner.stats.handled > 0, lambda: runner.run_once(0.2), what="the first batch")
        assert 0 < runner.stats.handled <= 5
        assert runner.lag() == 20 - runner.stats.handled
        wait_for(lambda: runner.stats.handled == 20, lambda: runner.run_once(0.2), what="the rest")
        assert runner.lag() == 0
    finally:
        runner.close()


def test_a_message_that_is_not_a_cloudevent_is_skipped(pg_db: Database, kafka_bootstrap: str) -> None:
    opts = single_partition(kafka_bootstrap)
    bus = EventBus()
    runner = KafkaConsumerRunner(pg_db, bus.subscribe("audit", [UPDATED], recorder("audit")), opts)
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(topic_for(UPDATED, opts.topic_prefix), b"not an event", b"k")
        producer.flush(10)
        events = write_updates(pg_db, ["a"], per_subject=1)
        relay = Relay(pg_db, opts)
        relay.run_once()
        relay.close()
        wait_for(lambda: len(effects_of(pg_db, "audit")) == 1, lambda: runner.run_once(0.2), what="the good event")
        assert [e.event_id for e in effects_of(pg_db, "audit")] == [events[0].id]
        assert runner.lag() == 0
    finally:
        runner.close()


def test_a_database_outage_does_not_skip_messages(pg_db: Database, kafka_bootstrap: str) -> None:
    opts = single_partition(kafka_bootstrap)
    events = write_updates(pg_db, ["a", "b"], per_subject=5)
    relay = Relay(pg_db, opts)
    relay.run_once()
    relay.close()
    bus = EventBus()
    runner = KafkaConsumerRunner(pg_db, bus.subscribe("audit", [UPDATED], recorder("audit")), opts, batch_size=4)
    failures: list[Exception] = []

    def step() -> None:
        try:
            runner.run_once(0.2)
        except Exception as exc:  # the outage, as the worker loop would see it
            failures.append(exc)

    try:
        with pg_db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE processed_events RENAME TO processed_events_away")
        wait_for(lambda: bool(failures), step, what="the outage to be noticed")
        with pg_db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE processed_events_away RENAME TO processed_events")
        wait_for(lambda: len(effects_of(pg_db, "audit")) == len(events), step, what="recovery")
    finally:
        runner.close()
    assert "processed_events" in str(failures[0])
    assert sorted(e.event_id for e in effects_of(pg_db, "audit")) == sorted(e.id for e in events)
