"""A rule-based :class:`~marketpilot.workflows.base.FraudCheck`, the stand-in until the fraud
service is plugged in behind the same protocol.

Rules, each with its reason (the first blocking rule wins, else any review rule):
- the buyer is on the blocklist -> block;
- total above `block_minor` -> block;
- total above `review_minor`, or more than `review_units` units -> review;
- otherwise approve.
Thresholds are in minor units of the order's currency; they are deliberately coarse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from marketpilot.workflows.base import FraudVerdict, OrderFacts


@dataclass(frozen=True)
class RuleFraudCheck:
    review_minor: int = 250_000
    block_minor: int = 2_000_000
    review_units: int = 50
    blocked_users: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def with_blocklist(cls, users: Iterable[str], **thresholds: int) -> RuleFraudCheck:
        return cls(blocked_users=frozenset(users), **thresholds)

    def check(self, order: OrderFacts) -> FraudVerdict:
        if order.user_id in self.blocked_users:
            return FraudVerdict("block", "buyer is on the blocklist", reasons=("blocklisted_buyer",))
        if order.total_minor > self.block_minor:
            return FraudVerdict("block", f"total {order.total_minor} above {self.block_minor}", reasons=("amount_block",))
        reasons = []
        if order.total_minor > self.review_minor:
            reasons.append("amount_review")
        if order.units > self.review_units:
            reasons.append("units_review")
        if reasons:
            return FraudVerdict("review", ", ".join(reasons), reasons=tuple(reasons))
        return FraudVerdict("approve", "no rule fired")
