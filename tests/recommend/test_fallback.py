"""The deterministic fallback: when it is chosen (drift, no model, model error, feature store
down, latency budget), that the response says so and the counter counts it, and how it ranks
(regional popularity, freshness, the session's categories)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from marketpilot.domain.entities import InteractionIn, ListingIn, SellerIn, UserIn
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.features.catalog import recent_items_view
from marketpilot.platform.features.redis_store import RedisOnlineStore
from marketpilot.platform.monitoring.drift_report import DriftReport, DriftThresholds
from marketpilot.platform.monitoring.drift_service import DriftService
from marketpilot.platform.monitoring.drift_store import save_report
from marketpilot.recommend.fallback import FALLBACK_NAME, PopularityFallback
from marketpilot.recommend.model import BoolArray, Candidates, Catalog, Query
from marketpilot.recommend.service import LoadedModel, RecommendationRequest, RecommendationService, Strategy
from marketpilot.runtime import Runtime

OLD = datetime(2020, 1, 1, tzinfo=UTC)
NOW = datetime.now(UTC)


class Ranked:
    """A model stand-in ranking its catalogue in order; `delay` seconds per call; `fail` raises."""

    name = "ranked"

    def __init__(self, listing_ids: list[str], *, delay: float = 0.0, fail: bool = False) -> None:
        self.catalog = Catalog.build(listing_ids, ["u1"])
        self.delay = delay
        self.fail = fail

    def recommend(self, query: Query, allowed: BoolArray | None = None) -> Candidates:
        if self.fail:
            raise RuntimeError("model exploded")
        time.sleep(self.delay)
        items = np.flatnonzero(allowed if allowed is not None else np.ones(self.catalog.n_items, bool))[: query.k]
        return Candidates(items.astype(np.int64), np.ones(len(items), dtype=np.float32))

    def similar(self, item: int, k: int, allowed: BoolArray | None = None) -> Candidates:
        return self.recommend(Query(k=k), allowed)


@pytest.fixture
def rt(sqlite_db: Database, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(database_url=sqlite_db.url, home=tmp_path / "home"), migrate=False)
    runtime.sellers.create(SellerIn(id="s1", name="Shop"))
    for lid, category in [("eu-hit", "fashion"), ("us-hit", "fashion"), ("plain", "home"), ("garden", "home")]:
        runtime.listings.create(
            ListingIn(id=lid, seller_id="s1", title=lid, category_path=category, price_minor=100, currency="EUR",
                      created_at=OLD)
        )
    for uid, region in [("eu1", "eu"), ("eu2", "eu"), ("us1", "us"), ("u1", "eu")]:
        runtime.users.create(UserIn(id=uid, region=region))
    at = NOW - timedelta(days=1)
    runtime.interactions.ingest(
        [
            InteractionIn(user_id="eu1", listing_id="eu-hit", event="purchase", timestamp=at),
            InteractionIn(user_id="eu2", listing_id="eu-hit", event="click", timestamp=at),
            InteractionIn(user_id="us1", listing_id="us-hit", event="purchase", timestamp=at),
            InteractionIn(user_id="us1", listing_id="us-hit", event="add_to_cart", timestamp=at),
            InteractionIn(user_id="us1", listing_id="plain", event="view", timestamp=NOW - timedelta(days=90)),
        ]
    )
    yield runtime
    runtime.close()


def build(rt: Runtime, model: Ranked | None = None, **kwargs: object) -> RecommendationService:
    loaded = None if model is None else LoadedModel(model, {"recommend": "1"})
    kwargs.setdefault("features", rt.features)
    return RecommendationService(rt.db, rt.source, model_loader=lambda: loaded, **kwargs)  # type: ignore[arg-type]


def fallbacks(svc: RecommendationService, reason: str) -> float:
    return float(svc.metrics.registry.get_sample_value("marketpilot_recommendation_fallbacks_total", {"reason": reason}) or 0)


def ids(slate: object) -> list[str]:
    return [i.listing_id for i in slate.items]  # type: ignore[attr-defined]


LISTINGS = ["plain", "garden", "eu-hit", "us-hit"]


def test_no_model_serves_the_fallback_names_it_and_counts_it(rt: Runtime) -> None:
    svc = build(rt)
    slate = svc.recommend(RecommendationRequest(k=2, user_id="u1", region="eu"))
    assert slate.strategy == Strategy.MODEL_UNAVAILABLE == "fallback_model_unavailable"
    assert slate.model_versions == {FALLBACK_NAME: "1"}
    assert fallbacks(svc, "model_unavailable") == 1


def test_active_drift_switches_to_the_fallback(rt: Runtime) -> None:
    drift = DriftService(rt.db, ttl=0.0)
    svc = build(rt, Ranked(LISTINGS), drift=drift.is_active)
    assert svc.recommend(RecommendationRequest(k=2, user_id="u1")).strategy == Strategy.MODEL
    report = DriftReport(
        model="recommend", model_version="1", instance="test", window_start=NOW - timedelta(minutes=5),
        window_end=NOW, observations=500, sampled=500, late=0, verdict="drift", features=(),
        thresholds=DriftThresholds(),
    )
    with rt.db.session() as s:
        save_report(s, report, rt.source)
    slate = svc.recommend(RecommendationRequest(k=2, user_id="u1"))
    assert slate.strategy == Strategy.DRIFT
    assert slate.model_versions == {FALLBACK_NAME: "1"}
    assert svc.similar("plain", 2).strategy == Strategy.DRIFT
    assert fallbacks(svc, "drift") == 2


def test_a_failing_model_is_replaced_by_the_fallback_for_that_request(rt: Runtime) -> None:
    svc = build(rt, Ranked(LISTINGS, fail=True))
    slate = svc.recommend(RecommendationRequest(k=2, user_id="u1"))
    assert slate.strategy == Strategy.MODEL_ERROR
    assert len(slate.items) == 2
    assert fallbacks(svc, "model_error") == 1


def test_unreachable_feature_store_serves_the_fallback(rt: Runtime) -> None:
    down = RedisOnlineStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    svc = build(rt, Ranked(LISTINGS), features=down)
    slate = svc.recommend(RecommendationRequest(k=2, user_id="u1"))
    assert slate.strategy == Strategy.FEATURE_UNAVAILABLE
    assert fallbacks(svc, "feature_unavailable") == 1


def test_model_slower_than_the_budget_is_skipped_once_its_latency_is_known(rt: Runtime) -> None:
    svc = build(rt, Ranked(LISTINGS, delay=0.3), budget_ms=200)
    svc.warm()
    first = svc.recommend(RecommendationRequest(k=2, user_id="u1"))
    assert first.strategy == Strategy.MODEL  # nothing known about the model yet
    second = svc.recommend(RecommendationRequest(k=2, user_id="u1"))
    assert second.strategy == Strategy.LATENCY_BUDGET
    assert fallbacks(svc, "latency_budget") == 1


def test_a_model_that_becomes_fast_again_is_served_again(rt: Runtime) -> None:
    model = Ranked(LISTINGS, delay=0.3)
    svc = build(rt, model, budget_ms=200, budget_probe_every=4)
    svc.warm()
    svc.recommend(RecommendationRequest(k=2, user_id="u1"))  # measured slow
    model.delay = 0.0
    strategies = [svc.recommend(RecommendationRequest(k=2, user_id="u1")).strategy for _ in range(120)]
    assert strategies[0] == Strategy.LATENCY_BUDGET
    assert strategies[3] == Strategy.MODEL  # the 4th skip probes the model
    assert strategies[-10:] == [Strategy.MODEL] * 10  # the fast calls pushed the slow one out


def test_regional_popularity_ranks_what_the_region_buys_first(rt: Runtime) -> None:
    svc = build(rt)
    eu = svc.recommend(RecommendationRequest(k=4, session_id="a", region="eu"))
    us = svc.recommend(RecommendationRequest(k=4, session_id="b", region="us"))
    assert ids(eu)[0] == "eu-hit" and ids(us)[0] == "us-hit"
    # Unknown region: global counts (us-hit weighs 10 + 5, eu-hit 10 + 3).
    assert ids(svc.recommend(RecommendationRequest(k=1, session_id="c")))[0] == "us-hit"


def test_interactions_older_than_the_window_do_not_count(rt: Runtime) -> None:
    svc = build(rt)
    slate = svc.recommend(RecommendationRequest(k=4, session_id="a", region="us"))
    scores = {i.listing_id: i.score for i in slate.items}
    assert scores["plain"] == scores["garden"]  # the 90-day-old view is outside the 30 days


def test_a_brand_new_listing_outranks_old_listings_with_no_interactions(rt: Runtime) -> None:
    svc = build(rt)
    svc.recommend(RecommendationRequest(k=1, session_id="warm"))
    rt.listings.create(ListingIn(id="fresh", seller_id="s1", title="New", category_path="home", price_minor=1,
                                 currency="EUR"))
    slate = svc.recommend(RecommendationRequest(k=5, session_id="a", region="eu"))
    assert ids(slate).index("fresh") < ids(slate).index("plain")


def test_the_fallback_is_deterministic(rt: Runtime) -> None:
    one, two = build(rt), build(rt)
    request = RecommendationRequest(k=4, session_id="a", region="eu")
    assert ids(one.recommend(request)) == ids(two.recommend(request))
    assert ids(one.recommend(RecommendationRequest(k=4, session_id="b"))) == ["us-hit", "eu-hit", "garden", "plain"]


def test_session_history_pulls_its_category_forward(rt: Runtime) -> None:
    svc = build(rt)
    before = ids(svc.recommend(RecommendationRequest(k=4, session_id="sess", region="eu")))
    assert before == ["eu-hit", "us-hit", "garden", "plain"]
    rt.features.write(recent_items_view(), ["sess"], {"recent_items": [["plain"]], "recent_times": [[1]],
                                                      "interactions": [1]}, event_time=1)
    after = ids(svc.recommend(RecommendationRequest(k=4, session_id="sess", region="eu")))
    # garden shares the session item's category; the session item itself is hidden.
    assert after == ["eu-hit", "garden", "us-hit"]


def test_fallback_similar_ranks_the_same_category_only(rt: Runtime) -> None:
    svc = build(rt)
    slate = svc.similar("eu-hit", 5)
    assert slate.strategy == Strategy.MODEL_UNAVAILABLE
    assert ids(slate) == ["us-hit"]


def test_fallback_honours_the_mask_it_is_given(rt: Runtime) -> None:
    svc = build(rt)
    svc.availability.ensure_loaded()
    fb: PopularityFallback = svc.fallback
    allowed = np.array([lid != "us-hit" for lid in svc.availability.universe.ids])
    got = fb.recommend(Query(k=10), allowed)
    assert "us-hit" not in [svc.availability.universe.ids[i] for i in got.items]
    assert len(got.items) == 3
