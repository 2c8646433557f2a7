"""A listing created after the model was trained is added to the served two-stage pipeline
(its text embedded, inserted into the HNSW index above the threshold) and can be served by
the model at once, not only by the fallback ranking."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpilot.domain.entities import ListingIn, SellerIn
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.recommend.availability import Filters
from marketpilot.recommend.catalog_data import fit_pipeline
from marketpilot.recommend.pipeline import PipelineConfig, TwoStagePipeline
from marketpilot.recommend.service import LoadedModel, RecommendationRequest, Strategy
from marketpilot.runtime import Runtime

ITEMS, USERS = 40, 60
TITLES = ("red wool scarf", "steel espresso pot")


def _title(i: int) -> str:
    return f"{TITLES[i % 2]} {i}"


@pytest.fixture
def rt(sqlite_db: Database, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(
        # What is served is under test, not how fast: no latency-budget fallback on a loaded machine.
        load_settings(database_url=sqlite_db.url, home=tmp_path / "home", recommend_budget_ms=60_000), migrate=False
    )
    runtime.sellers.create(SellerIn(id="s1", name="Shop"))
    for i in range(ITEMS):
        runtime.listings.create(ListingIn(id=f"l{i:02d}", seller_id="s1", title=_title(i), category_path=f"c{i % 2}",
                                          price_minor=100, currency="EUR", quantity=1))
    yield runtime
    runtime.close()


def _pipeline(ann_min_items: int) -> TwoStagePipeline:
    rng = np.random.default_rng(0)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for u in range(USERS):
        liked = [i for i in range(ITEMS) if i % 2 == u % 2]
        for n, i in enumerate(rng.choice(liked, 8, replace=False)):
            rows.append({"user_id": f"u{u:02d}", "listing_id": f"l{i:02d}", "event": "click",
                         "timestamp": start + timedelta(hours=u * 10 + n)})
    listings = pd.DataFrame({"listing_id": [f"l{i:02d}" for i in range(ITEMS)], "title": [_title(i) for i in range(ITEMS)],
                             "category_path": [f"c{i % 2}" for i in range(ITEMS)]})
    config = PipelineConfig(validation_repeats=2, ann_min_items=ann_min_items)
    config.ranker.trees = 30
    config.ranker.min_child_samples = 5
    return fit_pipeline(pd.DataFrame(rows), listings, None, config)


@pytest.mark.parametrize("ann_min_items", [0, 10**9])
def test_a_listing_created_after_training_is_served_by_the_model(rt: Runtime, ann_min_items: int) -> None:
    pipeline = _pipeline(ann_min_items)
    pipeline.prepare_serving()
    svc = rt.recommendations
    svc.warm()
    svc.use_model(LoadedModel(pipeline, {"recommend": "1"}))
    first = svc.recommend(RecommendationRequest(k=5, user_id="u00"))
    assert first.strategy == Strategy.MODEL
    rt.listings.create(ListingIn(id="late", seller_id="s1", title="red wool scarf late", category_path="new",
                                 price_minor=100, currency="EUR", quantity=1))
    only_new = svc.recommend(RecommendationRequest(k=5, user_id="u00", filters=Filters(category="new")))
    assert "late" in pipeline.catalog.item_index  # added to the served model's catalogue
    if ann_min_items == 0:
        assert len(pipeline._large.index("content")) == ITEMS + 1  # and to its live HNSW graph
    assert only_new.strategy == Strategy.MODEL
    assert [i.listing_id for i in only_new.items] == ["late"]
    # sold out: never served, by the model or anyone
    rt.inventory.set_quantity("late", 0)
    again = svc.recommend(RecommendationRequest(k=5, user_id="u00", filters=Filters(category="new")))
    assert again.items == []
