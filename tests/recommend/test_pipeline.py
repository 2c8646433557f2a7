"""The two-stage pipeline as the online service uses it: the Recommender contract, the
allowed mask, cold start for new users and new listings, and persistence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpilot.recommend.catalog_data import fit_pipeline
from marketpilot.recommend.model import Query, Recommender
from marketpilot.recommend.pipeline import (
    STAGE1_MIN_SE,
    PipelineConfig,
    TwoStagePipeline,
    als_retriever,
    ranker_kept,
)

sys.path.insert(0, str(Path(__file__).parent))
from planted import group_of, planted  # noqa: E402


@pytest.fixture(scope="module")
def fitted() -> tuple[TwoStagePipeline, pd.DataFrame]:
    frame, listings, users = planted()
    # one listing nobody has interacted with yet: cold start
    listings = pd.concat([listings, pd.DataFrame({
        "listing_id": ["new_bike"], "seller_id": ["s1"], "title": ["road bike carbon 99"],
        "category_path": ["cat1/sub"], "attributes": ['{"group": 1}']})], ignore_index=True)
    config = PipelineConfig(validation_repeats=2, batch_users=16)
    config.ranker.trees = 30
    config.ranker.min_child_samples = 5
    return fit_pipeline(frame, listings, users, config), frame


def test_the_pipeline_is_a_recommender_and_recommends_the_users_taste(fitted) -> None:
    pipeline, _ = fitted
    assert isinstance(pipeline, Recommender)
    cat = pipeline.catalog
    user = cat.user_index["u2_05"]
    history = np.array([cat.item_index[f"i2_{i:02d}"] for i in range(3)])
    got = pipeline.recommend(Query(k=5, user=user, history=history))
    assert len(got.items) == 5
    assert not set(got.items.tolist()) & set(history.tolist())
    assert np.all(np.diff(got.scores) <= 0)
    assert sum(group_of(cat.listing_ids[i]) == 2 for i in got.items) >= 4


def test_disallowed_items_are_never_returned(fitted) -> None:
    pipeline, _ = fitted
    cat = pipeline.catalog
    allowed = np.ones(cat.n_items, bool)
    allowed[[cat.item_index[f"i0_{i:02d}"] for i in range(15)]] = False
    for user in range(0, cat.n_users, 7):
        got = pipeline.recommend(Query(k=10, user=user), allowed)
        assert allowed[got.items].all()
    only = np.zeros(cat.n_items, bool)
    only[:2] = True
    assert set(pipeline.recommend(Query(k=10, user=0), only).items.tolist()) <= {0, 1}
    assert len(pipeline.similar(0, 5, np.zeros(cat.n_items, bool)).items) == 0


def test_a_new_user_gets_their_regions_popular_items_and_a_session_steers_them(fitted) -> None:
    pipeline, _ = fitted
    cat = pipeline.catalog
    cold = pipeline.recommend(Query(k=5, region="R1"))
    assert sum(group_of(cat.listing_ids[i]) == 1 for i in cold.items) >= 4
    session = np.array([cat.item_index["i0_01"], cat.item_index["i0_02"]])
    steered = pipeline.recommend(Query(k=5, history=session, region="R1"))
    assert sum(group_of(cat.listing_ids[i]) == 0 for i in steered.items) >= 3


def test_a_new_listing_has_neighbours_from_its_text_and_seller(fitted) -> None:
    pipeline, _ = fitted
    cat = pipeline.catalog
    got = pipeline.similar(cat.item_index["new_bike"], 5)
    assert cat.item_index["new_bike"] not in got.items
    assert all(cat.listing_ids[i].startswith("i1_") for i in got.items)


def test_the_pipeline_round_trips_through_an_array_bundle(fitted, tmp_path) -> None:
    from marketpilot.platform.models.artifacts import load_model, save_model

    pipeline, _ = fitted
    save_model(pipeline.to_bundle(), tmp_path / "m")
    loaded = TwoStagePipeline.from_bundle(load_model(tmp_path / "m"))
    assert loaded.uses_ranker == pipeline.uses_ranker
    assert loaded.ranker_first_weight == pipeline.ranker_first_weight
    assert pipeline.ranker_first_weight in pipeline.config.ranker_first_grid
    assert pipeline.validation["ranker_first_weight"] == pipeline.ranker_first_weight
    for user in (0, 17, 55):
        q = Query(k=8, user=user, history=np.array([user % 60]))
        a, b = pipeline.recommend(q), loaded.recommend(q)
        assert a.items.tolist() == b.items.tolist()
        assert np.allclose(a.scores, b.scores, atol=1e-5)


def test_fitting_is_deterministic() -> None:
    frame, listings, users = planted(seed=3)
    config = PipelineConfig(validation_repeats=2)
    config.ranker.trees = 20
    config.ranker.min_child_samples = 5
    a = fit_pipeline(frame, listings, users, config)
    b = fit_pipeline(frame, listings, users, config)
    assert a.validation == b.validation
    q = Query(k=10, user=3)
    assert a.recommend(q).items.tolist() == b.recommend(q).items.tolist()


def test_the_pipelines_als_and_the_als_baseline_share_their_settings(fitted) -> None:
    pipeline, _ = fitted
    config = pipeline.config
    fitted_als = pipeline.retrievers["als"].params()
    assert (fitted_als["factors"], fitted_als["regularization"], fitted_als["alpha"]) == (
        config.als_factors, config.als_regularization, config.als_alpha)
    # what `marketpilot evaluate recommend` and the simulator bench compare against
    assert als_retriever(config).params() == fitted_als
    other = als_retriever(PipelineConfig(als_factors=8, als_regularization=3.0, als_alpha=1.5)).params()
    assert (other["factors"], other["regularization"], other["alpha"]) == (8, 3.0, 1.5)


def test_a_known_user_sent_without_history_is_ranked_by_their_learnt_taste(fitted) -> None:
    pipeline, _ = fitted
    cat = pipeline.catalog
    got = pipeline.recommend(Query(k=5, user=cat.user_index["u0_03"]))
    assert sum(group_of(cat.listing_ids[i]) == 0 for i in got.items) >= 4


def test_a_reranking_pool_carries_new_listings_even_where_validation_dropped_cold_slots(fitted) -> None:
    pipeline, _ = fitted
    cat = pipeline.catalog
    new_bike = cat.item_index["new_bike"]
    user = cat.user_index["u1_04"]
    history = np.array([cat.item_index[f"i1_{i:02d}"] for i in range(4)])
    kept = pipeline.cold_slots
    pipeline.cold_slots = 0  # as when held-out repeats found the slate better without them
    try:
        slate = pipeline.recommend(Query(k=10, user=user, history=history))
        assert new_bike not in slate.items
        pooled = pipeline.recommend(Query(k=30, user=user, history=history, pool=20))
        assert new_bike in pooled.items
        assert pooled.items.tolist().index(new_bike) >= 10  # offered in the pool, not forced into the slate
        assert pooled.items[:10].tolist() == slate.items.tolist()
    finally:
        pipeline.cold_slots = kept


def test_stacking_folds_label_each_held_pair_once_and_never_one_the_retrievers_saw() -> None:
    from marketpilot.recommend.evaluation.splits import fold_split
    from marketpilot.recommend.interactions import Interactions

    frame, _, _ = planted(seed=1)
    data = Interactions.from_frame(frame)
    pipeline = TwoStagePipeline(PipelineConfig(validation_repeats=4))
    pipeline.catalog = data.catalog
    groups = pipeline._groups(data, 4)
    fold = fold_split(data, 4, seed=1)
    assert len(groups) == 4
    labelled_before: set[tuple[int, int]] = set()
    for f, (cs, y, users) in enumerate(groups):
        pos = y > 0
        labelled = set(zip(users[cs.rows[pos]].tolist(), cs.items[pos].tolist(), strict=True))
        held = set(zip(data.users[fold == f].tolist(), data.items[fold == f].tolist(), strict=True))
        fit = set(zip(data.users[fold != f].tolist(), data.items[fold != f].tolist(), strict=True))
        assert labelled and labelled <= held
        assert not labelled & fit
        assert not labelled & labelled_before
        labelled_before |= labelled


def test_a_bundle_with_one_ranker_model_text_still_loads(fitted) -> None:
    pipeline, _ = fitted
    bundle = pipeline.to_bundle()
    assert bundle.metadata["ranker"] is not None
    texts = bundle.metadata["ranker"].pop("models")
    bundle.metadata["ranker"]["model"] = texts[0]  # as bundles written before bagging
    del bundle.metadata["ranker_first_weight"]
    loaded = TwoStagePipeline.from_bundle(bundle)
    assert loaded.ranker is not None and len(loaded.ranker.boosters) == 1
    assert loaded.ranker_first_weight == 0.0
    assert len(loaded.recommend(Query(k=5, user=0)).items) == 5


def test_the_cold_slot_is_kept_within_its_ndcg_budget() -> None:
    frame, listings, users = planted(seed=2)
    listings = pd.concat([listings, pd.DataFrame({
        "listing_id": ["new_bike"], "seller_id": ["s1"], "title": ["road bike carbon 99"],
        "category_path": ["cat1/sub"], "attributes": ['{"group": 1}']})], ignore_index=True)
    config = PipelineConfig(validation_repeats=2, cold_max_loss=1.0)  # any loss is within budget
    config.ranker.trees = 20
    config.ranker.min_child_samples = 5
    pipeline = fit_pipeline(frame, listings, users, config)
    assert pipeline.cold_slots == config.cold_slots
    v = pipeline.validation
    strict = v["cold_slots_ndcg_at_10"] >= v["no_cold_slots_ndcg_at_10"]
    config0 = PipelineConfig(validation_repeats=2, cold_max_loss=0.0)  # the old no-loss rule
    config0.ranker.trees = 20
    config0.ranker.min_child_samples = 5
    assert (fit_pipeline(frame, listings, users, config0).cold_slots == config.cold_slots) == strict


def test_stage_one_in_bounded_batches_gives_the_candidates_of_one_big_batch(fitted, monkeypatch) -> None:
    import scipy.sparse as sp

    from marketpilot.recommend import pipeline as module

    pipe, _ = fitted
    n_users, n_items = min(40, pipe.catalog.n_users), pipe.catalog.n_items
    rng = np.random.default_rng(0)
    history = sp.random(n_users, n_items, density=0.05, format="csr", random_state=1, dtype=np.float32)
    users = np.arange(n_users)
    recent = [rng.choice(n_items, 2, replace=False) for _ in range(n_users)]
    whole = pipe._candidates_for(users, history, recent)
    monkeypatch.setattr(module, "BATCH_CELLS", 7 * n_items)  # batches of 7 users
    assert pipe._batch_rows() == 7
    batched = pipe._candidates_in_batches(users, history, recent)
    np.testing.assert_array_equal(batched.rows, whole.rows)
    np.testing.assert_array_equal(batched.items, whole.items)
    assert batched.names == whole.names
    np.testing.assert_array_equal(batched.coldness, whole.coldness)
    # BLAS rounds a matrix product of another shape differently (~1e-7); ranks among nearly
    # tied scores may swap with it, nothing else may change
    ranks = np.array([n.endswith("_lrank") for n in whole.names])
    np.testing.assert_allclose(batched.features[:, ~ranks], whole.features[:, ~ranks], rtol=1e-5, atol=1e-5)
    assert (batched.features[:, ranks] == whole.features[:, ranks]).mean() > 0.95


def test_the_stage1_ordering_replaces_the_ranker_only_on_a_lead_beyond_the_holdouts_noise() -> None:
    rng = np.random.default_rng(0)
    ranker = rng.uniform(0, 1, 900)
    noise = rng.normal(0, 0.3, 900)
    # stage 1 ahead on the mean by a hair, far inside two standard errors: the ranker stays
    kept, lead, se = ranker_kept(ranker, ranker + noise - noise.mean() + 0.001)
    assert kept and lead == pytest.approx(0.001) and se == pytest.approx(0.3 / 30, rel=0.1)
    # ahead by five standard errors: stage 1 is served
    kept, lead, _ = ranker_kept(ranker, ranker + noise - noise.mean() + 0.05)
    assert not kept and lead == pytest.approx(0.05)
    # behind: the ranker stays; the same figures: the ranker stays
    assert ranker_kept(ranker, ranker - 0.01)[0]
    assert ranker_kept(ranker, ranker.copy())[0]
    # the same lead on every user is no noise at all
    assert not ranker_kept(ranker, ranker + 0.001)[0]
    with pytest.raises(ValueError, match="3 ranker figures for 2 stage-1 figures"):
        ranker_kept(np.ones(3), np.ones(2))


def test_the_decision_and_its_evidence_ship_with_the_model(fitted) -> None:
    pipeline, _ = fitted
    loaded = TwoStagePipeline.from_bundle(pipeline.to_bundle())
    lead, se = loaded.validation["stage1_lead_over_ranker"], loaded.validation["stage1_lead_se"]
    assert se >= 0 and loaded.uses_ranker == pipeline.uses_ranker == (not lead > STAGE1_MIN_SE * se)
