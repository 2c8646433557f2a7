"""Kafka topic layout: one topic per event family, keyed by aggregate id.

An event type is ``<namespace>.<family>.<what happened>`` (``marketpilot.listing.updated``).
Its topic is the configured prefix plus the family: ``marketpilot.listing`` holds both
``listing.created`` and ``listing.updated``. Why a family and not one topic per type: Kafka
orders messages only within a partition of one topic, and the message key is the event
subject (the aggregate id), so putting every event of a family in one topic keeps a
listing's ``created`` ahead of its ``updated`` for every consumer. A topic per type would let
a consumer see an update before the creation; one topic for everything would make every
consumer read (and discard) every event. Events of different families are not ordered
relative to each other in the distributed profile.

Types outside the ``marketpilot.`` namespace keep their namespace: ``acme.parcel.lost`` goes
to ``<prefix>acme.parcel``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from marketpilot.platform.events.kafka_options import KafkaOptions

log = logging.getLogger(__name__)

NAMESPACE = "marketpilot."
_LEGAL = re.compile(r"[A-Za-z0-9._-]{1,249}")


class TopicError(RuntimeError):
    """A topic could not be named or created."""


def family(event_type: str) -> str:
    """``marketpilot.listing.created`` -> ``listing``; ``acme.parcel.lost`` -> ``acme.parcel``."""
    head, dot, _ = event_type.rpartition(".")
    if not dot or not head:
        raise TopicError(f"event type {event_type!r} has no family: expected '<namespace>.<family>.<event>'")
    return head.removeprefix(NAMESPACE)


def topic_for(event_type: str, prefix: str) -> str:
    topic = prefix + family(event_type)
    if not _LEGAL.fullmatch(topic):
        raise TopicError(f"topic {topic!r} for event type {event_type!r} is not a legal Kafka topic name")
    return topic


def topics_for(event_types: Iterable[str], prefix: str) -> set[str]:
    return {topic_for(t, prefix) for t in event_types}


class Topics:
    """Creates the topics it is asked for, once per process, if the cluster lacks them."""

    def __init__(self, options: KafkaOptions, *, timeout: float = 30.0) -> None:
        self.options = options
        self.timeout = timeout
        self._known: set[str] = set()

    def for_type(self, event_type: str) -> str:
        return topic_for(event_type, self.options.topic_prefix)

    def ensure(self, names: Iterable[str]) -> list[str]:
        """Make sure every topic exists; returns the ones this call created."""
        wanted = set(names) - self._known
        if not wanted:
            return []
        # A client per call, dropped after: this runs once per new topic per process, and an
        # idle admin client would keep reconnecting for the life of the process.
        admin = AdminClient(self.options.admin_config())
        try:
            existing = set(admin.list_topics(timeout=self.timeout).topics)
        except KafkaException as exc:
            raise TopicError(f"cannot list topics on {self.options.bootstrap}: {exc}") from exc
        missing = sorted(wanted - existing)
        created: list[str] = []
        if missing:
            futures = admin.create_topics(
                [NewTopic(n, self.options.partitions, self.options.replication_factor) for n in missing],
                operation_timeout=self.timeout,
                request_timeout=self.timeout,
            )
            for name, future in futures.items():
                try:
                    future.result(self.timeout)
                    created.append(name)
                except KafkaException as exc:
                    # Another worker created it first: that is the outcome we wanted.
                    if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                        continue
                    raise TopicError(f"cannot create topic {name!r}: {exc}") from exc
            if created:
                log.info(
                    "created Kafka topics %s (%d partitions, replication %d)",
                    created, self.options.partitions, self.options.replication_factor,
                )
        self._known |= wanted
        return created
