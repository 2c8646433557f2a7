"""The carrier adapter: rate a parcel, buy a label, cancel it, track it.

Label purchase carries an idempotency key derived from the order, so a replayed step never
buys a second label. Like the payment adapter it only knows a base URL.

Rate quotes are kept for `rates_ttl` seconds per (origin, destination, weight): every order
of a busy lane would otherwise ask the carrier the same question, one HTTP round trip per
order. A quote is only used to pick the service; the label's price is the carrier's at
purchase.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

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
    reference: str = ""


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

    def find_labels(self, *, reference: str) -> list[Label]: ...

    def track(self, tracking_number: str) -> Tracking: ...


def _label(body: dict[str, object]) -> Label:
    return Label(id=str(body["id"]), tracking_number=str(body["tracking_number"]), service=str(body["service"]),
                 status=str(body["status"]), reference=str(body.get("reference", "")))


RATE_CACHE_MAX = 4096  # lanes kept; the cache starts over beyond


class HttpCarrier:
    def __init__(self, transport: ProviderTransport, *, rates_ttl: float = 0.0) -> None:
        self.transport = transport
        self.name = transport.provider
        self.rates_ttl = rates_ttl
        self._quotes: dict[tuple[str, str, int], tuple[float, list[Rate]]] = {}

    def rates(self, *, origin: str, destination: str, weight_grams: int) -> list[Rate]:
        lane = (origin, destination, weight_grams)
        if self.rates_ttl > 0:
            kept = self._quotes.get(lane)
            if kept is not None and kept[0] > time.monotonic():
                return list(kept[1])
        body = self.transport.request(
            "POST", "/v1/rates", "rates", idempotency_key=f"rates:{origin}:{destination}:{weight_grams}",
            json={"origin": origin, "destination": destination, "weight_grams": weight_grams},
        )
        quotes = [
            Rate(service=str(r["service"]), amount_minor=int(r["amount"]), currency=str(r["currency"]), days=int(r["days"]))
            for r in body["rates"]
        ]
        if self.rates_ttl > 0 and quotes:
            if len(self._quotes) >= RATE_CACHE_MAX:
                self._quotes.clear()
            self._quotes[lane] = (time.monotonic() + self.rates_ttl, quotes)
        return list(quotes)

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

    def find_labels(self, *, reference: str) -> list[Label]:
        """The labels bought for `reference` (an order id), whatever their state."""
        body = self.transport.request("GET", f"/v1/labels?{urlencode({'reference': reference})}", "find_labels")
        return [_label(item) for item in body["data"]]

    def track(self, tracking_number: str) -> Tracking:
        body = self.transport.request("GET", f"/v1/tracking/{tracking_number}", "track")
        status = str(body["status"])
        return Tracking(tracking_number=tracking_number, status=status, delivered=status == "delivered")
