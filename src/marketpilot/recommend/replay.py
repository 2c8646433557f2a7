"""Shadow replay: run logged recommendation requests through a candidate model, without
serving it, and compare its slates and an off-policy estimate of its value with what was served.

For each logged `RecommendationServed` slate in the window, the request (user or session,
region, device, page, seed listing, k) is rebuilt and ranked by the candidate through the
service's own mask and guard (:meth:`RecommendationService.recommend` with ``shadow=``),
so the candidate sees exactly the constraints production applies. Two caveats, both inherent
to replaying rather than re-running the past: availability and the session's recent items
are read as they are *now*, not as they were when the slate was served.

Compared per slate: overlap@k (shared listings / k) and whether the top listing is the same.
Value: a slot's reward is 1 when the buyer clicked, carted or bought the listing shown there
(interactions sent back with the slate's `request_id`). The candidate's value per slot is
estimated with item-position IPS and self-normalised IPS over (slate, position) rounds, using
the propensities the serving policy logged (1.0 for deterministic slots): a round counts when
the candidate puts the logged listing at the logged position. Intervals are percentile
bootstrap over rounds (:mod:`marketpilot.measure.ope.bootstrap`); rounds of one slate are
not independent, so read them as optimistic. Without logged exploration the candidate only
gets credit where it agrees with production; the report says how many rounds matched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select

from marketpilot.measure.ope.base import Interval, RoundTerms
from marketpilot.measure.ope.bootstrap import bootstrap_interval
from marketpilot.platform.db import schema as t
from marketpilot.recommend.events import RecommendationServed
from marketpilot.recommend.service import LoadedModel, RecommendationRequest, RecommendationService

log = logging.getLogger(__name__)

REWARD_EVENTS = ("click", "add_to_cart", "purchase")
MAX_SLATES = 20_000


@dataclass(frozen=True, slots=True)
class ReplayReport:
    slates: int  # logged slates read
    replayed: int  # slates the candidate ranked
    failed: int  # slates the candidate could not rank (errors, unknown seed listing)
    mean_overlap_at_k: float
    same_top_share: float
    rounds: int  # (slate, position) pairs
    matched_rounds: int  # rounds where the candidate shows the logged listing at the logged position
    logged_value: float  # observed reward per slot of what was served
    candidate_ips: Interval | None
    candidate_snips: Interval | None


def _rewards(service: RecommendationService, request_ids: list[str]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    with service.db.read() as s:
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start : start + 500]
            found.update(
                (row.request_id, row.listing_id)
                for row in s.execute(
                    select(t.Interaction.request_id, t.Interaction.listing_id).where(
                        t.Interaction.request_id.in_(chunk), t.Interaction.event.in_(REWARD_EVENTS)
                    )
                )
            )
    return found


def _logged(service: RecommendationService, since: datetime, max_slates: int) -> list[RecommendationServed]:
    from marketpilot.platform.events.outbox import row_to_event

    service.slates.flush()
    with service.db.read() as s:
        rows = s.scalars(
            select(t.OutboxEvent)
            .where(t.OutboxEvent.type == RecommendationServed.TYPE, t.OutboxEvent.time >= since)
            .order_by(t.OutboxEvent.position.desc())
            .limit(max_slates)
        ).all()
        return [row_to_event(r).payload() for r in rows]  # type: ignore[misc]


def shadow_replay(
    service: RecommendationService,
    candidate: LoadedModel,
    *,
    window: timedelta,
    max_slates: int = MAX_SLATES,
    n_bootstrap: int = 500,
) -> ReplayReport:
    """Replay the slates logged over `window` through `candidate` (see the module docstring)."""
    logged = _logged(service, datetime.now(UTC) - window, max_slates)
    rewarded = _rewards(service, [e.request_id for e in logged])
    overlaps: list[float] = []
    same_top: list[bool] = []
    weights: list[float] = []
    rewards: list[float] = []
    failed = 0
    for event in logged:
        k = len(event.items)
        if k == 0 or (event.user_id is None and event.session_id is None):
            continue
        request = RecommendationRequest(
            k=min(k, 100), user_id=event.user_id, session_id=event.session_id, region=event.region,
            device=event.device, page=event.page, seed_listing_id=event.seed_listing_id,
        )
        try:
            slate = service.recommend(request, shadow=candidate)
        except Exception:
            log.debug("shadow replay: candidate failed on %s", event.request_id, exc_info=True)
            failed += 1
            continue
        mine = [i.listing_id for i in slate.items]
        overlaps.append(len(set(mine) & set(event.items)) / k)
        same_top.append(bool(mine) and mine[0] == event.items[0])
        propensities = event.propensities or [1.0] * k
        for position, (listing, propensity) in enumerate(zip(event.items, propensities, strict=True)):
            shown_by_candidate = position < len(mine) and mine[position] == listing
            weights.append((1.0 if shown_by_candidate else 0.0) / max(float(propensity), 1e-6))
            rewards.append(1.0 if (event.request_id, listing) in rewarded else 0.0)
    w, r = np.asarray(weights), np.asarray(rewards)
    ips = snips = None
    if len(w):
        zeros = np.zeros_like(w)
        ips = bootstrap_interval(RoundTerms(zeros, w * r), n_bootstrap=n_bootstrap)
        if w.sum() > 0:
            snips = bootstrap_interval(RoundTerms(zeros, w * r, w), n_bootstrap=n_bootstrap)
    return ReplayReport(
        slates=len(logged),
        replayed=len(overlaps),
        failed=failed,
        mean_overlap_at_k=float(np.mean(overlaps)) if overlaps else 0.0,
        same_top_share=float(np.mean(same_top)) if same_top else 0.0,
        rounds=len(w),
        matched_rounds=int((w > 0).sum()),
        logged_value=float(r.mean()) if len(r) else 0.0,
        candidate_ips=ips,
        candidate_snips=snips,
    )
