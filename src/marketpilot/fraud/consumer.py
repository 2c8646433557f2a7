"""The fraud consumer: decides every placed order and authorised payment, publishes the verdict.

Subscribed as ``fraud.decisions`` to ``OrderPlaced`` and ``PaymentAuthorized``. An order
event carries only the buyer, the total and the shipping region; when the storefront has
recorded the payment attempt in ``transactions`` (same ``order_id``), its identity signals
(card fingerprint, device, IP, email domain, IP region) are used. The decision row and its
event (``TransactionApproved`` / ``ReviewRequired`` / ``FraudDetected``) are written in the
delivery's transaction, so a redelivered event neither decides twice nor publishes twice.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketpilot.domain.events import OrderPlaced
from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.events import FRAUD_EVENTS, decision_event
from marketpilot.fraud.service import FraudService
from marketpilot.platform.db import schema as t
from marketpilot.platform.events import EventBus, outbox
from marketpilot.platform.events.cloudevent import CloudEvent

__all__ = ["FraudConsumer"]

CONSUMER = "fraud.decisions"


class FraudConsumer:
    TYPES = FRAUD_EVENTS

    def __init__(self, service: FraudService, source: str) -> None:
        self.service = service
        self.source = source

    def subscribe(self, bus: EventBus, name: str = CONSUMER) -> None:
        bus.subscribe(name, self.TYPES, self)

    def __call__(self, event: CloudEvent, session: Session) -> None:
        request = self.request(event, session)
        if request is None:
            return
        decision, new = self.service.decide_in(session, request)
        if new:
            outbox.append(session, decision_event(decision, user_id=request.user_id, order_id=request.order_id),
                          self.source)

    def request(self, event: CloudEvent, session: Session) -> FraudRequest | None:
        data = event.data
        order_id = str(data["order_id"])
        attempt = session.scalar(select(t.Transaction).where(t.Transaction.order_id == order_id)
                                 .order_by(t.Transaction.timestamp.desc()).limit(1))
        if event.type == OrderPlaced.TYPE:
            tid, user, amount, currency = f"o:{order_id}"[:64], data["user_id"], data["total_minor"], data["currency"]
            shipping = data.get("shipping_region")
        else:
            order = session.get(t.Order, order_id)
            if order is None:
                return None  # a payment for an order this marketplace does not know
            tid, user, amount, currency = data["payment_id"], order.user_id, data["amount_minor"], data["currency"]
            shipping = order.shipping_region
        return FraudRequest(
            transaction_id=str(tid), user_id=str(user), amount_minor=int(amount), currency=str(currency),
            order_id=order_id, shipping_region=shipping or (attempt.shipping_region if attempt else None),
            instrument_fingerprint=(attempt.instrument_fingerprint or None) if attempt else None,
            device_id=attempt.device_id if attempt else None, ip=attempt.ip if attempt else None,
            email_domain=attempt.email_domain if attempt else None,
            ip_region=attempt.ip_region if attempt else None, timestamp=event.time,
        )
