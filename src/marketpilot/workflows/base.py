"""Contracts of the workflows capability: what an order workflow needs from the outside.

`FraudCheck` is the seam to the fraud capability: the order workflow asks it for a
decision and never learns how it was made. :class:`RuleFraudCheck` (in `fraud_rules`)
stands behind it until the fraud service is plugged in with the same signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

FraudDecision = Literal["approve", "review", "block"]


@dataclass(frozen=True, slots=True)
class OrderLineFacts:
    listing_id: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the workflow knows of an order, read once in its first step and checkpointed."""

    order_id: str
    user_id: str
    seller_id: str
    total_minor: int
    currency: str
    shipping_region: str | None
    origin_region: str | None
    lines: tuple[OrderLineFacts, ...]

    @property
    def units(self) -> int:
        return sum(ln.quantity for ln in self.lines)


@dataclass(frozen=True, slots=True)
class FraudVerdict:
    decision: FraudDecision
    reason: str
    score: float | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)


class FraudCheck(Protocol):
    """Decides whether an order may proceed. Must be fast and side-effect free: the
    workflow may ask again after a crash and records the first answer it got."""

    def check(self, order: OrderFacts) -> FraudVerdict: ...


@dataclass(frozen=True, slots=True)
class VendorApplication:
    """A seller's onboarding application: identity, tax and bank details, documents supplied
    and beneficial owners (screened like the company name)."""

    seller_id: str
    company_name: str
    country: str
    vat_number: str | None
    registration_number: str | None
    iban: str | None
    documents: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    expected_monthly_minor: int = 0
