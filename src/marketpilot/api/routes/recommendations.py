"""Recommendations for the storefront (operator and service keys).

`POST /v1/recommendations` returns a slate of servable listings with scores, the request id
(send it back on the interactions the slate causes), the strategy that produced it (`model`
or `fallback_<reason>`) and the model versions. `GET /v1/listings/{id}/similar` ranks listings
like one listing. Both only ever return listings that are active and in stock at request time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, model_validator

from marketpilot.api.deps import RuntimeDep, blocking, id_path
from marketpilot.api.security import Machine, Operator
from marketpilot.domain.entities import EntityId, MinorUnits, Record
from marketpilot.recommend.audit import ExposureAudit, parse_window
from marketpilot.recommend.availability import Filters
from marketpilot.recommend.service import MAX_K, RecommendationRequest, RecommendationService, Slate

router = APIRouter(tags=["recommendations"])

Label = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,31}$")]


class ContextIn(Record):
    region: Label | None = Field(default=None, description="Buyer's region; popularity is regional.")
    device: Label | None = Field(default=None, description="e.g. `mobile`, `desktop`.")
    page: Label | None = Field(default=None, description="Where the slate is shown, e.g. `home`, `listing`, `cart`.")
    seed_listing_id: EntityId | None = Field(default=None, description="The listing the buyer is looking at, if any.")
    hour: int | None = Field(default=None, ge=0, le=23, description="Local hour of day (0-23).")


class FiltersIn(Record):
    category: Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f]+$")] | None = Field(
        default=None, description="Category path prefix: `fashion` matches `fashion/shoes`."
    )
    min_price_minor: MinorUnits | None = None
    max_price_minor: MinorUnits | None = None

    @model_validator(mode="after")
    def _range(self) -> FiltersIn:
        lo, hi = self.min_price_minor, self.max_price_minor
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_price_minor {lo} is above max_price_minor {hi}")
        return self


class RecommendationIn(Record):
    user_id: EntityId | None = Field(default=None, description="Known buyer; or send `session_id`.")
    session_id: EntityId | None = Field(default=None, description="Anonymous session id when there is no user.")
    k: int = Field(20, ge=1, le=MAX_K, description="How many listings to return.")
    context: ContextIn = Field(ContextIn(), description="Where and how the slate is shown.")
    filters: FiltersIn = Field(FiltersIn(), description="Restrict the slate; all optional.")

    @model_validator(mode="after")
    def _who(self) -> RecommendationIn:
        if self.user_id is None and self.session_id is None:
            raise ValueError("give a user_id or an anonymous session_id")
        return self


class ScoredListingOut(BaseModel):
    listing_id: str
    score: float
    position: int = Field(description="0-based position in the slate.")


class SlateOut(BaseModel):
    request_id: str = Field(description="Echo it on the interactions this slate leads to.")
    strategy: str = Field(
        description="`model`, or `fallback_<reason>` with reason one of drift, model_unavailable, "
        "model_error, feature_unavailable, latency_budget."
    )
    model_versions: dict[str, str]
    feature_snapshot_id: str
    items: list[ScoredListingOut]


def _out(slate: Slate) -> Response:
    """The slate as `SlateOut` JSON, encoded straight from the service's dataclasses (msgspec):
    this is the hottest route, and building and re-validating 20 pydantic models per response
    cost more than the encoding. The routes declare `response_model=SlateOut` for the schema;
    `tests/api/test_recommendations.py` checks the bodies against it."""
    return Response(msgspec.json.encode(slate), media_type="application/json")


def _service(request: Request, rt: RuntimeDep) -> RecommendationService:
    """The runtime's service; its counters join this app's /metrics registry once."""
    service = rt.recommendations
    app = request.app
    if getattr(app.state, "recommendation_metrics", None) is not service.metrics.registry:
        app.state.metrics.registry.register(service.metrics.registry)
        app.state.recommendation_metrics = service.metrics.registry
    return service


@router.post("/v1/recommendations", response_model=SlateOut)
async def recommend(body: RecommendationIn, request: Request, rt: RuntimeDep, _who: Machine) -> Response:
    ctx, f = body.context, body.filters
    query = RecommendationRequest(
        k=body.k,
        user_id=body.user_id,
        session_id=body.session_id,
        region=ctx.region,
        device=ctx.device,
        page=ctx.page,
        seed_listing_id=ctx.seed_listing_id,
        hour=ctx.hour,
        filters=Filters(category=f.category, min_price=f.min_price_minor, max_price=f.max_price_minor),
    )
    service = _service(request, rt)
    return _out(await blocking(service.recommend, query))


class GroupExposureOut(BaseModel):
    group: str = Field(description="`cold_start`, or `category:<prefix>` for an audit bucket.")
    target: float | None = Field(description="Target share of exposure (null: no target, reported only).")
    exposure_share: float = Field(description="Share of position-weighted exposure (weight 1/log2(position+2)).")
    met: bool | None
    listings: int = Field(description="Distinct listings of the group that were shown.")


class ExplorationDayOut(BaseModel):
    session_class: str = Field(description="`new|returning` / device.")
    day: date = Field(description="UTC day.")
    slots: int = Field(description="Slots served to the class that day.")
    explored: int = Field(description="Of which explored.")
    share: float
    cap: float | None = Field(description="The class's cap on the explored share (null: exploration off).")
    within: bool | None = Field(description="share <= cap.")


class ExposureAuditOut(BaseModel):
    since: datetime
    until: datetime
    slates: int = Field(description="Logged slates the audit read.")
    truncated: bool = Field(description="True when the window held more slates than one audit reads (200,000).")
    groups: list[GroupExposureOut]
    exploration: list[ExplorationDayOut] = Field(description="Explored share of slots per session class and day.")


def _audit_out(audit: ExposureAudit) -> ExposureAuditOut:
    return ExposureAuditOut(
        since=audit.since, until=audit.until, slates=audit.slates, truncated=audit.truncated,
        groups=[
            GroupExposureOut(group=g.group, target=g.target, exposure_share=g.exposure_share, met=g.met, listings=g.listings)
            for g in audit.groups
        ],
        exploration=[
            ExplorationDayOut(session_class=d.session_class, day=d.day, slots=d.slots, explored=d.explored,
                              share=d.share, cap=d.cap, within=d.within)
            for d in audit.exploration
        ],
    )


@router.get("/v1/recommendations/audit")
async def exposure_audit(
    request: Request,
    rt: RuntimeDep,
    _who: Operator,
    window: Annotated[str, Query(max_length=8, description="How far back: `30m`, `24h`, `7d` (at most `90d`).")] = "24h",
) -> ExposureAuditOut:
    """Exposure of listing groups (cold-start, audit buckets) in the logged slates, against targets."""
    span = parse_window(window)
    service = _service(request, rt)
    return _audit_out(await blocking(service.audit, span))


@router.get("/v1/listings/{listing_id}/similar", response_model=SlateOut)
async def similar_listings(
    listing_id: Annotated[str, id_path("Listing id.")],
    request: Request,
    rt: RuntimeDep,
    _who: Machine,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many listings to return.")] = 20,
) -> Response:
    service = _service(request, rt)
    return _out(await blocking(service.similar, listing_id, k))
