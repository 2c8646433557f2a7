"""Seller transparency: a listing's placement is explained from the logged slates, for its own
seller only and without buyer identities; disputes link the snapshots they are about."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_service import FixedScores, rt, service  # noqa: F401 - the shared fixture

from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.recommend.service import RecommendationRequest, RecommendationService
from marketpilot.recommend.transparency import explain, list_disputes, open_dispute
from marketpilot.runtime import Runtime

WEEK = timedelta(days=7)


def _serve(svc: RecommendationService, n: int) -> list[str]:
    request_ids = [svc.recommend(RecommendationRequest(k=3, session_id=f"buyer-{i}", page="home")).request_id for i in range(n)]
    svc.slates.flush()
    return request_ids


def test_placement_is_explained_from_the_logged_snapshots(rt: Runtime) -> None:  # noqa: F811
    svc = service(rt, FixedScores())
    try:
        served = _serve(svc, 5)
        ranking = explain(rt.db, svc.availability.universe, "l10", scope="s1", window=WEEK)
    finally:
        svc.close()
    assert ranking.impressions == 5 and ranking.best_position == 1 and ranking.median_position == 1.0
    assert ranking.strategies == {"model": 5}
    assert {s.request_id for s in ranking.recent} == set(served)
    assert all(s.page == "home" and s.slate_size == 3 for s in ranking.recent)
    assert ranking.signals["category"] == "home" and ranking.signals["price_minor"] == 1100
    assert ranking.signals["available_units"] == 1 and ranking.signals["age_days"] < 1
    assert "buyer-" not in repr(ranking)  # no buyer identities, only non-personal signals

    never = explain(rt.db, svc.availability.universe, "l00", scope=None, window=WEEK)
    assert never.impressions == 0 and never.best_position is None and never.recent == []


def test_another_sellers_listing_is_not_found(rt: Runtime) -> None:  # noqa: F811
    svc = service(rt, FixedScores())
    try:
        with pytest.raises(NotFound):
            explain(rt.db, svc.availability.universe, "l10", scope="s2", window=WEEK)
        with pytest.raises(NotFound):
            open_dispute(rt.db, "l10", "buried", None, scope="s2")
    finally:
        svc.close()


def test_a_dispute_links_the_snapshots_it_names_or_the_latest_ones(rt: Runtime) -> None:  # noqa: F811
    svc = service(rt, FixedScores())
    try:
        served = _serve(svc, 4)
    finally:
        svc.close()
    named = open_dispute(rt.db, "l10", "placed below worse listings", served[:2], scope="s1")
    assert named.request_ids == served[:2] and named.status == "open" and named.seller_id == "s1"
    latest = open_dispute(rt.db, "l10", "why?", None, scope=None)
    assert set(latest.request_ids) == set(served)
    with pytest.raises(InvalidInput, match="no logged slate"):
        open_dispute(rt.db, "l10", "x", ["not-a-served-request"], scope="s1")
    with pytest.raises(InvalidInput, match="reason"):
        open_dispute(rt.db, "l10", "   ", None, scope="s1")
    assert [d.id for d in list_disputes(rt.db, "l10", scope="s1")] == [latest.id, named.id]
