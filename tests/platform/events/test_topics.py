from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient

from marketpilot.platform.events import KafkaOptions, topic_for
from marketpilot.platform.events.topics import TopicError, Topics


@pytest.mark.parametrize(
    ("event_type", "topic"),
    [
        ("marketpilot.listing.created", "mp.listing"),
        ("marketpilot.listing.updated", "mp.listing"),
        ("marketpilot.inventory.changed", "mp.inventory"),
        ("acme.parcel.lost", "mp.acme.parcel"),
    ],
)
def test_events_of_one_family_share_a_topic(event_type: str, topic: str) -> None:
    assert topic_for(event_type, "mp.") == topic


@pytest.mark.parametrize(
    ("event_type", "message"),
    [
        ("created", "event type 'created' has no family"),
        ("marketpilot.bad family.created", "topic 'mp.bad family' for event type"),
    ],
)
def test_unusable_event_types_have_no_topic(event_type: str, message: str) -> None:
    with pytest.raises(TopicError, match=message):
        topic_for(event_type, "mp.")


def test_missing_topics_are_created_once_with_the_configured_partitions(kafka_bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    topics = Topics(KafkaOptions(bootstrap=kafka_bootstrap, topic_prefix=prefix, partitions=4))
    names = {topics.for_type("marketpilot.listing.created"), topics.for_type("marketpilot.order.placed")}

    assert sorted(topics.ensure(names)) == sorted(names)
    assert Topics(topics.options).ensure(names) == []  # another process finds them there

    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert {n: len(metadata.topics[n].partitions) for n in names} == {n: 4 for n in names}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bootstrap": ""}, "Kafka bootstrap servers are required"),
        ({"partitions": 0}, "partitions must be at least 1, got 0"),
        ({"session_timeout_ms": 10}, "session_timeout_ms must be at least 1000, got 10"),
        ({"producer": {"acks": 1}}, "producer setting acks cannot be overridden: delivery relies on acks=all"),
        (
            {"consumer": {"enable.auto.commit": True}},
            "consumer setting enable.auto.commit cannot be overridden: delivery relies on enable.auto.commit=False",
        ),
    ],
)
def test_bad_kafka_options_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KafkaOptions(**{"bootstrap": "127.0.0.1:9092", **kwargs})  # type: ignore[arg-type]


def test_tuning_overrides_keep_the_delivery_guarantees() -> None:
    config = KafkaOptions(bootstrap="b:9092", producer={"linger.ms": 50}).producer_config()
    assert config["enable.idempotence"] is True and config["acks"] == "all" and config["linger.ms"] == 50
    consumer = KafkaOptions(bootstrap="b:9092", topic_prefix="p.").consumer_config("audit")
    assert consumer["group.id"] == "p.audit" and consumer["enable.auto.commit"] is False
