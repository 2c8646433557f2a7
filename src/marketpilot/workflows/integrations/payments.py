"""The payment-provider adapter, on the Stripe/Adyen request flow.

authorise (a manual-capture payment intent) -> capture -> (void before capture | refund
after). Every call carries an idempotency key that the workflow derives from the order and
the operation, so a retried or replayed call returns the first call's result instead of
charging again. The adapter speaks HTTP to whatever `base_url` names; it has no notion of a
sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from marketpilot.workflows.integrations.transport import ProviderTransport


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment intent as the provider reports it."""

    id: str
    status: str  # requires_capture | succeeded | canceled | refunded
    amount_minor: int
    currency: str
    captured_minor: int = 0
    refunded_minor: int = 0
    reference: str = ""


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    payment_id: str
    amount_minor: int


class PaymentProvider(Protocol):
    name: str

    def authorize(self, *, amount_minor: int, currency: str, reference: str, idempotency_key: str) -> Payment: ...

    def capture(self, payment_id: str, *, amount_minor: int, idempotency_key: str) -> Payment: ...

    def void(self, payment_id: str, *, idempotency_key: str) -> Payment: ...

    def refund(self, payment_id: str, *, amount_minor: int, idempotency_key: str) -> Refund: ...

    def find(self, *, reference: str) -> list[Payment]: ...


def _payment(body: dict[str, Any]) -> Payment:
    return Payment(
        id=str(body["id"]), status=str(body["status"]), amount_minor=int(body["amount"]),
        currency=str(body["currency"]), captured_minor=int(body.get("amount_captured", 0)),
        refunded_minor=int(body.get("amount_refunded", 0)), reference=str(body.get("reference", "")),
    )


class HttpPaymentProvider:
    """:class:`PaymentProvider` over HTTP (JSON, bearer key, ``Idempotency-Key`` header)."""

    def __init__(self, transport: ProviderTransport) -> None:
        self.transport = transport
        self.name = transport.provider

    def authorize(self, *, amount_minor: int, currency: str, reference: str, idempotency_key: str) -> Payment:
        body = self.transport.request(
            "POST", "/v1/payment_intents", "authorize", idempotency_key=idempotency_key,
            json={"amount": amount_minor, "currency": currency, "reference": reference, "capture_method": "manual"},
        )
        return _payment(body)

    def capture(self, payment_id: str, *, amount_minor: int, idempotency_key: str) -> Payment:
        body = self.transport.request(
            "POST", f"/v1/payment_intents/{payment_id}/capture", "capture", idempotency_key=idempotency_key,
            json={"amount_to_capture": amount_minor},
        )
        return _payment(body)

    def void(self, payment_id: str, *, idempotency_key: str) -> Payment:
        body = self.transport.request(
            "POST", f"/v1/payment_intents/{payment_id}/cancel", "void", idempotency_key=idempotency_key, json={}
        )
        return _payment(body)

    def refund(self, payment_id: str, *, amount_minor: int, idempotency_key: str) -> Refund:
        body = self.transport.request(
            "POST", "/v1/refunds", "refund", idempotency_key=idempotency_key,
            json={"payment_intent": payment_id, "amount": amount_minor},
        )
        return Refund(id=str(body["id"]), payment_id=payment_id, amount_minor=int(body["amount"]))

    def find(self, *, reference: str) -> list[Payment]:
        """The payment intents made for `reference` (an order id), whatever their state: how a
        compensation learns what a run did that its records do not show."""
        body = self.transport.request("GET", f"/v1/payment_intents?{urlencode({'reference': reference})}", "find")
        return [_payment(item) for item in body["data"]]
