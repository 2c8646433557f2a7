"""Seller transparency: how a listing was ranked, and disputes about it (merchant-scoped).

A merchant key sees only its own seller's listings (another seller's listing is 404, as
everywhere); operators see all. Only non-personal signals are returned: no buyer ids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from marketpilot.api.deps import RuntimeDep, blocking, id_path
from marketpilot.api.security import Reader, SellerWriter
from marketpilot.domain.errors import NotFound
from marketpilot.platform.auth import Principal
from marketpilot.recommend.audit import parse_window
from marketpilot.recommend.transparency import Dispute, ListingRanking, explain, list_disputes, open_dispute
from marketpilot.runtime import Runtime

router = APIRouter(prefix="/v1/sellers/{seller_id}/listings/{listing_id}/ranking", tags=["seller transparency"])
SellerId = Annotated[str, id_path("Seller id.")]
ListingId = Annotated[str, id_path("Listing id.")]
RequestId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class SnapshotOut(BaseModel):
    request_id: str = Field(description="The served slate (its `RecommendationServed` event).")
    served_at: str
    position: int
    score: float
    slate_size: int
    strategy: str
    model_versions: dict[str, str]
    feature_snapshot_id: str
    explored: bool | None = Field(description="Placed there by exploration rather than by the ranking.")
    propensity: float | None
    page: str | None
    region: str | None


class ListingRankingOut(BaseModel):
    listing_id: str
    seller_id: str
    window_days: float
    impressions: int
    best_position: int | None
    median_position: float | None
    mean_score: float | None
    strategies: dict[str, int] = Field(description="Impressions by the strategy that produced the slate.")
    explored_impressions: int
    signals: dict[str, Any] = Field(description="The listing's non-personal ranking signals now.")
    recent: list[SnapshotOut] = Field(description="The latest ranking snapshots that showed the listing.")


class DisputeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    request_ids: list[RequestId] | None = Field(
        default=None, max_length=50, description="Snapshots the dispute is about; default: the latest ones."
    )


class DisputeOut(BaseModel):
    id: str
    seller_id: str
    listing_id: str
    reason: str
    request_ids: list[str]
    status: str
    created_at: datetime


def _scope(seller_id: str, who: Principal) -> str:
    """The seller the request may see: the path's, and for a merchant only its own."""
    if who.scope is not None and who.scope != seller_id:
        raise NotFound(f"seller {seller_id!r} not found")
    return seller_id


def _explain(rt: Runtime, listing_id: str, scope: str, window: timedelta) -> ListingRanking:
    av = rt.recommendations.availability
    av.ensure_loaded()
    av.refresh()
    rt.recommendations.slates.flush()
    return explain(rt.db, av.universe, listing_id, scope=scope, window=window)


@router.get("")
async def listing_ranking(
    seller_id: SellerId,
    listing_id: ListingId,
    rt: RuntimeDep,
    who: Reader,
    window: Annotated[str, Query(max_length=8, description="How far back: `24h`, `7d` (at most `90d`).")] = "7d",
) -> ListingRankingOut:
    """Where the listing was placed in served slates, by which strategy, and on what signals."""
    scope = _scope(seller_id, who)
    ranking = await blocking(_explain, rt, listing_id, scope, parse_window(window))
    return ListingRankingOut(**{**vars_of(ranking), "recent": [SnapshotOut(**vars_of(s)) for s in ranking.recent]})


@router.post("/disputes", status_code=201)
async def dispute_ranking(
    seller_id: SellerId, listing_id: ListingId, body: DisputeIn, rt: RuntimeDep, who: SellerWriter
) -> DisputeOut:
    """Open a ranking dispute linked to the snapshots it concerns."""
    scope = _scope(seller_id, who)
    rt.recommendations.slates.flush()
    dispute = await blocking(open_dispute, rt.db, listing_id, body.reason, body.request_ids, scope=scope)
    return DisputeOut(**vars_of(dispute))


@router.get("/disputes")
async def ranking_disputes(seller_id: SellerId, listing_id: ListingId, rt: RuntimeDep, who: Reader) -> list[DisputeOut]:
    scope = _scope(seller_id, who)
    disputes: list[Dispute] = await blocking(list_disputes, rt.db, listing_id, scope=scope)
    return [DisputeOut(**vars_of(d)) for d in disputes]


def vars_of(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]
