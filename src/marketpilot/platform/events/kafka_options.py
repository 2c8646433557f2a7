"""Kafka client settings for the relay, the consumer runner and topic administration.

One place decides the librdkafka configuration, so the producer guarantees (idempotence,
acks=all) and the consumer guarantees (manual commits) cannot drift apart between callers.
Extra keys in `producer`/`consumer` override the defaults for tuning (e.g. ``linger.ms``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marketpilot.platform.config import Settings

ClientConfig = dict[str, Any]

# Measured against the Tansu broker on a 2-core machine (benchmarks/bench_relay.py): a few
# milliseconds of linger and large batches let librdkafka fill 1 MB record batches; zstd was
# at least as fast as lz4 and none there (fewer bytes for the broker) and shrinks JSON most.
_PRODUCER_DEFAULTS: ClientConfig = {
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "compression.type": "zstd",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
    "message.timeout.ms": 30_000,
}

# What at-least-once, in-order delivery rests on; tuning overrides may not change these.
_PRODUCER_GUARANTEES: ClientConfig = {"enable.idempotence": True, "acks": "all"}
_CONSUMER_GUARANTEES: ClientConfig = {"enable.auto.commit": False, "enable.auto.offset.store": False}


@dataclass(frozen=True)
class KafkaOptions:
    """Where Kafka is and how the event topics and consumer groups are laid out.

    `topic_prefix` namespaces topics *and* consumer groups, so two deployments (or two test
    runs) can share one cluster without seeing each other's events.
    """

    bootstrap: str
    topic_prefix: str = "marketpilot."
    partitions: int = 6
    replication_factor: int = 1
    session_timeout_ms: int = 6000
    producer: Mapping[str, Any] = field(default_factory=dict)
    consumer: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ValueError("Kafka bootstrap servers are required (MARKETPILOT_KAFKA_BOOTSTRAP)")
        if self.partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {self.partitions}")
        if self.replication_factor < 1:
            raise ValueError(f"replication_factor must be at least 1, got {self.replication_factor}")
        if self.session_timeout_ms < 1000:
            raise ValueError(f"session_timeout_ms must be at least 1000, got {self.session_timeout_ms}")
        for kind, overrides, fixed in (
            ("producer", self.producer, _PRODUCER_GUARANTEES),
            ("consumer", self.consumer, _CONSUMER_GUARANTEES),
        ):
            clashes = sorted(k for k, v in overrides.items() if k in fixed and v != fixed[k])
            if clashes:
                raise ValueError(
                    f"{kind} setting {', '.join(clashes)} cannot be overridden: delivery relies on "
                    + ", ".join(f"{k}={fixed[k]}" for k in clashes)
                )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> KafkaOptions:
        if not settings.kafka_bootstrap:
            raise ValueError("Kafka bootstrap servers are required (MARKETPILOT_KAFKA_BOOTSTRAP)")
        defaults: dict[str, Any] = {
            "partitions": settings.kafka_partitions,
            "replication_factor": settings.kafka_replication_factor,
            "session_timeout_ms": settings.kafka_session_timeout_ms,
        }
        return cls(
            bootstrap=settings.kafka_bootstrap,
            topic_prefix=settings.kafka_topic_prefix,
            **{**defaults, **overrides},
        )

    def admin_config(self) -> ClientConfig:
        return {"bootstrap.servers": self.bootstrap}

    def producer_config(self) -> ClientConfig:
        return {"bootstrap.servers": self.bootstrap, **_PRODUCER_DEFAULTS, **self.producer, **_PRODUCER_GUARANTEES}

    def group_id(self, consumer: str) -> str:
        return f"{self.topic_prefix}{consumer}"

    def consumer_config(self, consumer: str) -> ClientConfig:
        return {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group_id(consumer),
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(self.session_timeout_ms // 3, 100),
            "enable.partition.eof": False,
            **self.consumer,
            # Offsets are committed by hand, after the handler's transaction has committed.
            **_CONSUMER_GUARANTEES,
        }
