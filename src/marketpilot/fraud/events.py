"""Events the fraud capability publishes (outbox), one per decided payment attempt.

``TransactionApproved`` (approve), ``ReviewRequired`` (review: an analyst must look) and
``FraudDetected`` (block). Each carries the decision's score, threshold, model version,
strategy and top reasons, so a subscriber (the order workflow, a notifier) needs no lookup.
"""

from __future__ import annotations

from typing import Any

from marketpilot.domain.events import EventData, OrderPlaced, PaymentAuthorized, register_event_type
from marketpilot.fraud.base import Action, FraudDecision

__all__ = ["FRAUD_EVENTS", "FraudDetected", "ReviewRequired", "TransactionApproved", "decision_event"]

# The events the fraud consumer decides on (an order placed, a payment authorised).
FRAUD_EVENTS = (OrderPlaced.TYPE, PaymentAuthorized.TYPE)


class _Decided(EventData, kw_only=True):
    AGGREGATE = "transaction_id"
    transaction_id: str
    user_id: str
    order_id: str | None = None
    score: float | None = None
    threshold: float | None = None
    model_version: str
    strategy: str
    reasons: list[dict[str, Any]] = []
    fallback_reason: str | None = None


@register_event_type
class TransactionApproved(_Decided, kw_only=True):
    TYPE = "marketpilot.fraud.transaction_approved"


@register_event_type
class ReviewRequired(_Decided, kw_only=True):
    TYPE = "marketpilot.fraud.review_required"


@register_event_type
class FraudDetected(_Decided, kw_only=True):
    TYPE = "marketpilot.fraud.fraud_detected"


_BY_ACTION: dict[Action, type[_Decided]] = {
    Action.APPROVE: TransactionApproved, Action.REVIEW: ReviewRequired, Action.BLOCK: FraudDetected,
}


def decision_event(decision: FraudDecision, *, user_id: str, order_id: str | None) -> _Decided:
    import math

    def finite(v: float) -> float | None:
        return v if math.isfinite(v) else None

    return _BY_ACTION[decision.action](
        transaction_id=decision.transaction_id, user_id=user_id, order_id=order_id, score=finite(decision.score),
        threshold=finite(decision.threshold), model_version=decision.model_version, strategy=decision.strategy.value,
        reasons=[{"feature": r.feature, "value": r.value, "contribution": r.contribution} for r in decision.reasons],
        fallback_reason=decision.fallback_reason,
    )
