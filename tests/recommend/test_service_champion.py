"""The registered `recommend` champion (the two-stage pipeline) is what the service serves,
through the registry, with the availability guard around it."""

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
from marketpilot.platform.models.fingerprints import fingerprint
from marketpilot.platform.models.registry import ModelRegistry
from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.model import Query
from marketpilot.recommend.pipeline import PipelineConfig, TwoStagePipeline
from marketpilot.recommend.service import MODEL_NAME, RecommendationRequest, Strategy, load_champion
from marketpilot.runtime import Runtime

ITEMS, USERS = 40, 60


def interactions() -> pd.DataFrame:
    """Two taste groups: even users like even listings, odd users odd ones."""
    rng = np.random.default_rng(0)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for u in range(USERS):
        liked = [i for i in range(ITEMS) if i % 2 == u % 2]
        for n, i in enumerate(rng.choice(liked, 8, replace=False)):
            rows.append({"user_id": f"u{u:02d}", "listing_id": f"l{i:02d}", "event": "click",
                         "timestamp": start + timedelta(hours=u * 10 + n)})
    return pd.DataFrame(rows)


@pytest.fixture
def rt(sqlite_db: Database, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(
        # What is served is under test, not how fast: no latency-budget fallback on a loaded machine.
        load_settings(database_url=sqlite_db.url, home=tmp_path / "home", recommend_budget_ms=60_000), migrate=False
    )
    runtime.sellers.create(SellerIn(id="s1", name="Shop"))
    for i in range(ITEMS):
        runtime.listings.create(
            ListingIn(id=f"l{i:02d}", seller_id="s1", title=f"Item {i}", category_path="c", price_minor=100,
                      currency="EUR", quantity=1)
        )
    yield runtime
    runtime.close()


@pytest.fixture
def champion(rt: Runtime) -> TwoStagePipeline:
    frame = interactions()
    pipeline = TwoStagePipeline(PipelineConfig(validation_repeats=2)).fit(Interactions.from_frame(frame))
    with ModelRegistry.from_settings(rt.settings) as registry:
        version = registry.log_training_run(
            MODEL_NAME, model=pipeline.to_bundle(), params={}, metrics={},
            data_fingerprint=fingerprint(frame),
        )
        registry.promote(MODEL_NAME, version.version)
    return pipeline


def test_the_registered_champion_is_loaded_and_serves_with_its_version(rt: Runtime, champion: TwoStagePipeline) -> None:
    loaded = load_champion(rt.settings)
    assert loaded is not None and loaded.versions == {MODEL_NAME: "1"}
    assert isinstance(loaded.model, TwoStagePipeline)
    slate = rt.recommendations.recommend(RecommendationRequest(k=5, user_id="u00"))
    assert slate.strategy == Strategy.MODEL
    assert slate.model_versions == {MODEL_NAME: "1"}
    # Served = the pipeline's own ranking for this user over the servable listings.
    own = champion.recommend(Query(k=5, user=champion.catalog.user_index["u00"]),
                             np.ones(champion.catalog.n_items, dtype=bool))
    assert [i.listing_id for i in slate.items] == [str(champion.catalog.listing_ids[i]) for i in own.items]
    assert len(slate.items) == 5


def test_champion_never_serves_a_sold_out_listing(rt: Runtime, champion: TwoStagePipeline) -> None:
    svc = rt.recommendations
    first = svc.recommend(RecommendationRequest(k=10, user_id="u00"))
    assert first.strategy == Strategy.MODEL
    for item in first.items:
        rt.inventory.set_quantity(item.listing_id, 0)
    again = svc.recommend(RecommendationRequest(k=10, user_id="u00"))
    assert again.strategy == Strategy.MODEL
    assert {i.listing_id for i in again.items}.isdisjoint({i.listing_id for i in first.items})
    similar = svc.similar("l02", 5)
    assert similar.strategy == Strategy.MODEL
    assert "l02" not in {i.listing_id for i in similar.items}
    assert {i.listing_id for i in similar.items}.isdisjoint({i.listing_id for i in first.items})
