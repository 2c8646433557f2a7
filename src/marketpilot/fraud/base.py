"""The fraud capability's contracts: what a scoring request carries and what a decision says.

A decision is auditable on its own: it names the action, the calibrated score, the
thresholds it was compared with, the model version that produced it, the features that
pushed the score most (LightGBM contributions) and whether the supervised model or the
documented fallback decided (``strategy``). Other capabilities (the order workflow) use
only these types and :meth:`marketpilot.fraud.service.FraudService.score`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

import msgspec

from marketpilot.domain.entities import CURRENCY_EXPONENT, ID_PATTERN
from marketpilot.domain.errors import InvalidInput

__all__ = [
    "DEFAULT_TARGET_FPR",
    "Action",
    "FraudDecision",
    "FraudRequest",
    "Reason",
    "Strategy",
    "validate_request",
]

DEFAULT_TARGET_FPR = 0.001  # at most 0.1 % of legitimate payments are sent to review or blocked
MAX_TEXT = 128  # ip, email domain, region: free text, bounded


class Action(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    BLOCK = "block"


class Strategy(StrEnum):
    MODEL = "model"  # the registered LightGBM model decided
    FALLBACK = "fallback"  # the model was unavailable; the IsolationForest anomaly score decided


class FraudRequest(msgspec.Struct, kw_only=True, frozen=True):
    """One payment attempt to decide. Identity signals are optional: a missing one is a
    missing feature (NaN), never a reason to fail."""

    transaction_id: str
    user_id: str
    amount_minor: int
    currency: str
    instrument_fingerprint: str | None = None
    device_id: str | None = None
    ip: str | None = None
    email_domain: str | None = None
    ip_region: str | None = None
    shipping_region: str | None = None
    order_id: str | None = None
    account_created_at: datetime | None = None
    timestamp: datetime | None = None  # event time; default: when the request is scored

    def at(self) -> datetime:
        return self.timestamp or datetime.now(UTC)


class Reason(msgspec.Struct, frozen=True):
    """One feature's push on the score: `contribution` is in log-odds (LightGBM SHAP values)
    or, for the fallback, the feature's standardised deviation."""

    feature: str
    value: float | None
    contribution: float


class FraudDecision(msgspec.Struct, kw_only=True, frozen=True):
    transaction_id: str
    action: Action
    score: float  # calibrated fraud probability (model) or anomaly score in [0, 1] (fallback)
    threshold: float  # score at or above which the payment goes to review
    block_threshold: float  # score at or above which it is blocked outright
    model_version: str  # "fraud/3", or "isolation_forest/3" when the fallback decided
    strategy: Strategy
    reasons: tuple[Reason, ...] = ()
    fallback_reason: str | None = None  # why the model did not decide (None when it did)


def validate_request(request: FraudRequest) -> FraudRequest:
    """Raise :class:`InvalidInput` (HTTP 422) naming the first bad field."""
    for name in ("transaction_id", "user_id", "order_id", "instrument_fingerprint", "device_id"):
        value = getattr(request, name)
        if value is None and name not in ("transaction_id", "user_id"):
            continue
        if not isinstance(value, str) or not _valid_id(value, long=name in ("instrument_fingerprint", "device_id")):
            raise InvalidInput(
                f"{name} {value!r} is malformed: expected letters, digits, '_', '-', '.', ':' "
                "starting with a letter or digit"
            )
    if isinstance(request.amount_minor, bool) or not isinstance(request.amount_minor, int):
        raise InvalidInput(f"amount_minor must be an integer number of minor units, got {request.amount_minor!r}")
    if request.amount_minor < 0:
        raise InvalidInput(f"amount_minor must not be negative, got {request.amount_minor}")
    if request.currency not in CURRENCY_EXPONENT:
        raise InvalidInput(
            f"unknown currency {request.currency!r}; expected one of {', '.join(sorted(CURRENCY_EXPONENT))}"
        )
    for name in ("ip", "email_domain", "ip_region", "shipping_region"):
        value = getattr(request, name)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT):
            raise InvalidInput(f"{name} must be 1-{MAX_TEXT} characters when given")
    return request


_LONG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")  # fingerprints, device ids: longer hashes


def _valid_id(value: str, *, long: bool) -> bool:
    return (_LONG_ID if long else ID_PATTERN).match(value) is not None
