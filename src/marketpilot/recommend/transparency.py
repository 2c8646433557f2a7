"""Seller transparency: why a listing was placed where it was, from non-personal signals only.

Every served slate is logged (`RecommendationServed`): request id, listings, positions, scores,
strategy, model versions, feature snapshot id, exploration flags and propensities, and the
request's page and region. That log *is* the per-request ranking snapshot; this module reads
it for one listing and adds the listing's own signals now (price against its category's
median, age, stock). Buyer identities (user and session ids) are never returned.

A seller who disagrees opens a ranking dispute: a ticket that links the snapshots (request
ids) it is about, so the operator reviewing it sees exactly what was served.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import String, cast, select

from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.recommend.availability import ListingUniverse
from marketpilot.recommend.events import RecommendationServed
from marketpilot.recommend.tables import RankingDispute

MAX_SLATES = 50_000
RECENT = 20
MAX_LINKED = 50


@dataclass(frozen=True, slots=True)
class Snapshot:
    request_id: str
    served_at: str
    position: int
    score: float
    slate_size: int
    strategy: str
    model_versions: dict[str, str]
    feature_snapshot_id: str
    explored: bool | None
    propensity: float | None
    page: str | None
    region: str | None


@dataclass(frozen=True, slots=True)
class ListingRanking:
    listing_id: str
    seller_id: str
    window_days: float
    impressions: int
    best_position: int | None
    median_position: float | None
    mean_score: float | None
    strategies: dict[str, int]
    explored_impressions: int
    signals: dict[str, Any]
    recent: list[Snapshot] = field(default_factory=list)


def _matching(db: Database, listing_id: str, since: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    # The JSON text contains the quoted id; the exact membership test follows in Python.
    needle = f'%"{listing_id}"%'
    with db.read() as s:
        return [
            (row.time, row.data)
            for row in s.execute(
                select(t.OutboxEvent.time, t.OutboxEvent.data)
                .where(
                    t.OutboxEvent.type == RecommendationServed.TYPE,
                    t.OutboxEvent.time >= since,
                    cast(t.OutboxEvent.data, String).like(needle),
                )
                .order_by(t.OutboxEvent.position.desc())
                .limit(MAX_SLATES)
            )
        ]


def _signals(universe: ListingUniverse, listing: t.Listing, now: datetime) -> dict[str, Any]:
    created = listing.created_at if listing.created_at.tzinfo else listing.created_at.replace(tzinfo=UTC)
    signals: dict[str, Any] = {
        "category": listing.category_path,
        "price_minor": listing.price_minor,
        "age_days": round((now - created).total_seconds() / 86_400, 2),
        "status": listing.status,
    }
    index = universe.index.get(listing.id)
    if index is not None:
        signals["available_units"] = int(universe.array("available")[index])
        codes, prices = universe.array("category"), universe.array("price")
        same = prices[codes == codes[index]]
        median = float(np.median(same)) if len(same) else None
        signals["category_median_price_minor"] = median
        signals["price_vs_category_median"] = round(listing.price_minor / median, 3) if median else None
    return signals


def explain(
    db: Database, universe: ListingUniverse, listing_id: str, *, scope: str | None, window: timedelta
) -> ListingRanking:
    """The placement of `listing_id` over `window`, for its seller (`scope`) or an operator."""
    now = datetime.now(UTC)
    with db.read() as s:
        listing = s.get(t.Listing, listing_id)
        if listing is None or (scope is not None and listing.seller_id != scope):
            raise NotFound(f"listing {listing_id!r} not found")
        signals = _signals(universe, listing, now)
        seller_id = listing.seller_id
    positions: list[int] = []
    scores: list[float] = []
    strategies: dict[str, int] = {}
    explored = 0
    recent: list[Snapshot] = []
    for served_at, data in _matching(db, listing_id, now - window):
        items = data.get("items", [])
        if listing_id not in items:
            continue
        i = items.index(listing_id)
        position = int(data["positions"][i])
        was_explored = data["explored"][i] if data.get("explored") else None
        positions.append(position)
        scores.append(float(data["scores"][i]))
        strategies[data["strategy"]] = strategies.get(data["strategy"], 0) + 1
        explored += bool(was_explored)
        if len(recent) < RECENT:
            recent.append(
                Snapshot(
                    request_id=data["request_id"],
                    served_at=data.get("served_at") or served_at.isoformat(),
                    position=position,
                    score=float(data["scores"][i]),
                    slate_size=len(items),
                    strategy=data["strategy"],
                    model_versions=data.get("model_versions", {}),
                    feature_snapshot_id=data.get("feature_snapshot_id", ""),
                    explored=was_explored,
                    propensity=data["propensities"][i] if data.get("propensities") else None,
                    page=data.get("page"),
                    region=data.get("region"),
                )
            )
    return ListingRanking(
        listing_id=listing_id,
        seller_id=seller_id,
        window_days=window.total_seconds() / 86_400,
        impressions=len(positions),
        best_position=min(positions) if positions else None,
        median_position=float(np.median(positions)) if positions else None,
        mean_score=float(np.mean(scores)) if scores else None,
        strategies=strategies,
        explored_impressions=explored,
        signals=signals,
        recent=recent,
    )


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    seller_id: str
    listing_id: str
    reason: str
    request_ids: list[str]
    status: str
    created_at: datetime


def open_dispute(
    db: Database,
    listing_id: str,
    reason: str,
    request_ids: list[str] | None,
    *,
    scope: str | None,
    window: timedelta = timedelta(days=30),
) -> Dispute:
    """Open a ranking dispute about `listing_id`, linked to the snapshots named in
    `request_ids` (each must be a logged slate that showed the listing) or, when none are
    given, to the listing's latest snapshots."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason: say what is wrong with the ranking")
    with db.read() as s:
        listing = s.get(t.Listing, listing_id)
        if listing is None or (scope is not None and listing.seller_id != scope):
            raise NotFound(f"listing {listing_id!r} not found")
        seller_id = listing.seller_id
    shown = [d["request_id"] for _, d in _matching(db, listing_id, datetime.now(UTC) - window) if listing_id in d.get("items", [])]
    if request_ids:
        unknown = sorted(set(request_ids) - set(shown))
        if unknown:
            raise InvalidInput(f"request_ids: no logged slate showing {listing_id!r} in the last 30 days: {', '.join(unknown[:5])}")
        linked = list(dict.fromkeys(request_ids))[:MAX_LINKED]
    else:
        linked = shown[:MAX_LINKED]
    row = RankingDispute(
        id=f"rd_{uuid.uuid4().hex[:16]}", seller_id=seller_id, listing_id=listing_id, reason=reason,
        request_ids=linked, status="open", created_at=datetime.now(UTC),
    )
    with db.session() as s:
        s.add(row)
        s.flush()
        return _dispute(row)


def list_disputes(db: Database, listing_id: str, *, scope: str | None) -> list[Dispute]:
    with db.read() as s:
        listing = s.get(t.Listing, listing_id)
        if listing is None or (scope is not None and listing.seller_id != scope):
            raise NotFound(f"listing {listing_id!r} not found")
        rows = s.scalars(
            select(RankingDispute).where(RankingDispute.listing_id == listing_id).order_by(RankingDispute.created_at.desc())
        ).all()
        return [_dispute(r) for r in rows]


def _dispute(row: RankingDispute) -> Dispute:
    return Dispute(row.id, row.seller_id, row.listing_id, row.reason, list(row.request_ids), row.status, row.created_at)

