"""CloudEvents 1.0 envelope (JSON structured mode, and the Kafka binary binding)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from marketpilot.domain.events import EVENT_TYPES, EventData

SPECVERSION = "1.0"

KafkaHeaders = list[tuple[str, str | bytes | None]]
"""Message headers as confluent-kafka produces and returns them."""


class CloudEvent(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]
    specversion: str = SPECVERSION
    datacontenttype: str = "application/json"

    @classmethod
    def create(cls, payload: EventData, source: str, *, time: datetime | None = None) -> CloudEvent:
        return cls(
            id=str(uuid.uuid4()),
            source=source,
            type=payload.TYPE,
            subject=payload.aggregate_id,
            time=time or datetime.now(UTC),
            data=msgspec.to_builtins(payload),
        )

    def payload(self) -> EventData:
        """The typed payload; raises KeyError for an unknown event type."""
        return msgspec.convert(self.data, EVENT_TYPES[self.type])

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> CloudEvent:
        return msgspec.json.decode(raw, type=cls)

    # CloudEvents Kafka protocol binding, binary content mode: attributes as `ce_*` headers,
    # the data as the message value, `content-type` header for datacontenttype.
    def to_kafka(self) -> tuple[bytes, bytes, KafkaHeaders]:
        headers = kafka_headers(
            self.id, self.source, self.type, self.subject, self.time, self.specversion, self.datacontenttype
        )
        return self.subject.encode(), msgspec.json.encode(self.data), headers

    @classmethod
    def from_kafka(
        cls, value: bytes, headers: KafkaHeaders | dict[str, str | bytes | None] | None
    ) -> CloudEvent:
        pairs = headers.items() if isinstance(headers, dict) else headers or []
        h = {k: v.decode() if isinstance(v, bytes) else v or "" for k, v in pairs}
        missing = [k for k in ("ce_id", "ce_source", "ce_type", "ce_specversion") if k not in h]
        if missing:
            raise ValueError(f"not a CloudEvents binary-mode message: missing headers {missing}")
        return cls(
            id=h["ce_id"],
            source=h["ce_source"],
            type=h["ce_type"],
            subject=h.get("ce_subject", ""),
            time=datetime.fromisoformat(h["ce_time"]) if "ce_time" in h else datetime.now(UTC),
            data=msgspec.json.decode(value),
            specversion=h["ce_specversion"],
            datacontenttype=h.get("content-type", "application/json"),
        )


def kafka_headers(
    id: str,
    source: str,
    type: str,
    subject: str,
    time: datetime,
    specversion: str = SPECVERSION,
    datacontenttype: str = "application/json",
) -> KafkaHeaders:
    """The `ce_*` headers of the Kafka binary binding; the relay builds them from outbox rows
    without materialising a :class:`CloudEvent` (its data stays the stored JSON text)."""
    return [
        ("ce_specversion", specversion.encode()),
        ("ce_id", id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", type.encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", time.isoformat().encode()),
        ("content-type", datacontenttype.encode()),
    ]
