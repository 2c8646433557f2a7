"""Fraud: real-time scoring for the storefront/payment service, the review queue for analysts.

``POST /v1/fraud/score`` (operator and service keys) decides one payment attempt and
records the decision; a repeated transaction id returns the recorded decision. Bad input
(negative amount, unknown currency, malformed ids) is a 422 naming the field.
``GET /v1/fraud/reviews`` and ``POST /v1/fraud/reviews/{id}`` (operator keys) list the
decisions sent to review and record an analyst's verdict, which labels the transaction
for the next training run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, field_validator

from marketpilot.api.deps import PageDep, RuntimeDep, blocking, page_out
from marketpilot.api.security import Machine, Operator
from marketpilot.domain.entities import CURRENCY_EXPONENT
from marketpilot.domain.errors import InvalidInput
from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.service import ReviewItem
from marketpilot.marketplace.page import Page

router = APIRouter(prefix="/v1/fraud", tags=["fraud"])

ID = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
LONG_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"


class ScoreIn(BaseModel):
    transaction_id: str = Field(pattern=ID, description="The payment attempt's id (idempotency key).")
    user_id: str = Field(pattern=ID)
    amount_minor: int = Field(ge=0, description="Amount in minor units (cents); never negative.")
    currency: str = Field(description="ISO 4217 code, one the marketplace trades in.")
    instrument_fingerprint: str | None = Field(None, pattern=LONG_ID, description="Hash of the card or account.")
    device_id: str | None = Field(None, pattern=LONG_ID)
    ip: str | None = Field(None, min_length=1, max_length=45)
    email_domain: str | None = Field(None, min_length=1, max_length=128)
    ip_region: str | None = Field(None, min_length=1, max_length=32)
    shipping_region: str | None = Field(None, min_length=1, max_length=32)
    order_id: str | None = Field(None, pattern=ID)
    account_created_at: datetime | None = None
    timestamp: datetime | None = Field(None, description="Event time; default: now.")

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENT:
            raise ValueError(f"unknown currency {value!r}; expected one of {', '.join(sorted(CURRENCY_EXPONENT))}")
        return value


class ReasonOut(BaseModel):
    feature: str
    value: float | None
    contribution: float = Field(description="Push on the score: LightGBM log-odds, or a z-score for the fallback.")


class DecisionOut(BaseModel):
    transaction_id: str
    action: Literal["approve", "review", "block"]
    score: float | None = Field(description="Calibrated fraud probability (model) or anomaly score (fallback).")
    threshold: float | None = Field(description="Score at or above which a payment goes to review.")
    block_threshold: float | None
    model_version: str
    strategy: Literal["model", "fallback"]
    fallback_reason: str | None = Field(description="Why the model did not decide, when the fallback did.")
    reasons: list[ReasonOut]


class ReviewIn(BaseModel):
    label: Literal["fraud", "legitimate"]
    note: str | None = Field(None, max_length=500)


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


@router.post("/score")
async def score(body: ScoreIn, rt: RuntimeDep, _who: Machine) -> DecisionOut:
    decision = await blocking(rt.fraud.decide, FraudRequest(**body.model_dump()))
    return DecisionOut(
        transaction_id=decision.transaction_id, action=decision.action.value, score=_finite(decision.score),
        threshold=_finite(decision.threshold), block_threshold=_finite(decision.block_threshold),
        model_version=decision.model_version, strategy=decision.strategy.value,
        fallback_reason=decision.fallback_reason,
        reasons=[ReasonOut(feature=r.feature, value=r.value, contribution=r.contribution) for r in decision.reasons],
    )


@router.get("/reviews")
async def list_reviews(
    rt: RuntimeDep, _who: Operator, page: PageDep, status: Literal["open", "closed"] = "open",
) -> Page[ReviewItem]:
    cursor = None
    if page.cursor is not None:
        if not page.cursor.isdigit():
            raise InvalidInput("cursor: malformed; pass back the `next_cursor` of the previous page unchanged")
        cursor = int(page.cursor)
    return page_out(await blocking(rt.fraud.reviews, limit=page.limit, cursor=cursor, status=status))


@router.post("/reviews/{decision_id}")
async def review(
    decision_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The decision's id from the review queue.")],
    body: ReviewIn, rt: RuntimeDep, who: Operator,
) -> ReviewItem:
    return await blocking(rt.fraud.review, decision_id, fraud=body.label == "fraud", reviewer=who.key_id,
                          note=body.note)
