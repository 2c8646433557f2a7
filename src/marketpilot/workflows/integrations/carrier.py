"""The carrier adapter: rate a parcel, buy a label, cancel it, track it.

Label purchase carries an idempotency key derived from the order, so a replayed step never
buys a second label. Like the payment adapter it only knows a base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from marketpilot.workflows.integrations.transport import ProviderTransport


@dataclass(frozen=True, slots=True)
class Rate:
    service: str
    amount_minor: int
    currency: str
    days: int


@dataclass(frozen=True, slots=True)
class Label:
    id: str
    tracking_number: str
    service: str
    status: str  # created | cancelled


@dataclass(frozen=True, slots=True)
class Tracking:
    tracking_number: str
    status: str  # label_created | in_transit | delivered | lost
    delivered: bool


class Carrier(Protocol):
    name: str

    def rates(self, *, origin: str, destination: str, weight_grams: int) -> list[Rate]: ...

    def create_label(
        self, *, reference: str, service: str, origin: str, destination: str, weight_grams: int, idempotency_key: str
    ) -> Label: ...

    def cancel_label(self, label_id: str, *, idempotency_key: str) -> Label: ...

    def track(self, tracking_number: str) -> Tracking: ...


def _label(body: dict[str, object]) -> Label:
    return Label(id=str(body["id"]), tracking_number=str(body["tracking_number"]), service=str(body["service"]),
                 status=str(body["status"]))


class HttpCarrier:
    def __init__(self, transport: ProviderTransport) -> None:
        self.transport = transport
        self.name = transport.provider

    def rates(self, *, origin: str, destination: str, weight_grams: int) -> list[Rate]:
        body = self.transport.request(
            "POST", "/v1/rates", "rates", idempotency_key=f"rates:{origin}:{destination}:{weight_grams}",
            json={"origin": origin, "destination": destination, "weight_grams": weight_grams},
        )
        return [
            Rate(service=str(r["service"]), amount_minor=int(r["amount"]), currency=str(r["currency"]), days=int(r["days"]))
            for r in body["rates"]
        ]

    def create_label(
        self, *, reference: str, service: str, origin: str, destination: str, weight_grams: int, idempotency_key: str
    ) -> Label:
        body = self.transport.request(
            "POST", "/v1/labels", "label", idempotency_key=idempotency_key,
            json={"reference": reference, "service": service, "origin": origin, "destination": destination,
                  "weight_grams": weight_grams},
        )
        return _label(body)

    def cancel_label(self, label_id: str, *, idempotency_key: str) -> Label:
        body = self.transport.request(
            "POST", f"/v1/labels/{label_id}/cancel", "cancel_label", idempotency_key=idempotency_key, json={}
        )
        return _label(body)

    def track(self, tracking_number: str) -> Tracking:
        body = self.transport.request("GET", f"/v1/tracking/{tracking_number}", "track")
        status = str(body["status"])
        return Tracking(tracking_number=tracking_number, status=status, delivered=status == "delivered")
