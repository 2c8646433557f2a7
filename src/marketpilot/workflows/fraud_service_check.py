"""The fraud service behind the order workflow's :class:`~marketpilot.workflows.base.FraudCheck`.

The decision is keyed `o:<order id>`, the transaction id the fraud capability's own
OrderPlaced consumer uses, so the workflow and the consumer share one stored decision per
order (the service returns the stored decision for a known transaction id) and the order is
counted once in the velocity features. A model outage is not an error here: the service's
documented fallback (its IsolationForest) decides and says so in the reason. With no fraud
model registered at all the service would send every order to review, which would stop
automation on a new marketplace; then the order rules (:mod:`.fraud_rules`) decide instead,
and the reason says that too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.events import decision_event
from marketpilot.platform.events import outbox
from marketpilot.workflows.base import FraudVerdict, OrderFacts
from marketpilot.workflows.fraud_rules import RuleFraudCheck

if TYPE_CHECKING:
    from marketpilot.fraud.service import FraudService


class ServiceFraudCheck:
    def __init__(self, service: FraudService, rules: RuleFraudCheck | None = None) -> None:
        self.service = service
        self.rules = rules or RuleFraudCheck()

    def check(self, order: OrderFacts) -> FraudVerdict:
        request = FraudRequest(
            transaction_id=f"o:{order.order_id}"[:64],
            user_id=order.user_id,
            amount_minor=order.total_minor,
            currency=order.currency,
            order_id=order.order_id,
            shipping_region=order.shipping_region,
        )
        # Stored like the consumer's decisions: a review lands in the analysts' queue, and the
        # decision event is published once, by whichever of the two decided first.
        with self.service.db.session() as session:
            decision, new = self.service.decide_in(session, request)
            if new:
                event = decision_event(decision, user_id=order.user_id, order_id=order.order_id)
                outbox.append(session, event, self.service.source)
        if decision.model_version == "none":
            verdict = self.rules.check(order)
            return FraudVerdict(verdict.decision, f"no fraud model registered; rules: {verdict.reason}",
                                reasons=verdict.reasons)
        how = decision.model_version + (f" ({decision.fallback_reason})" if decision.fallback_reason else "")
        return FraudVerdict(
            decision=decision.action.value,  # approve | review | block
            reason=f"{how}: score {decision.score:.4f}, review at {decision.threshold:.4f}",
            score=decision.score,
            reasons=tuple(r.feature for r in decision.reasons),
        )
