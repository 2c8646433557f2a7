"""Stage 1 above `PipelineConfig.ann_min_items`: the same candidate features as the dense
path without scoring every listing, HNSW top lists close to exact ones, never a disallowed
listing, listings added after training retrievable, and the threshold that keeps small
catalogues on the exact dense path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpilot.recommend.catalog_data import fit_pipeline
from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.model import Query
from marketpilot.recommend.pipeline import PipelineConfig, TwoStagePipeline
from marketpilot.recommend.popularity import Popularity
from marketpilot.recommend.retrievers.als import ALS
from marketpilot.recommend.retrievers.base import Batch
from marketpilot.recommend.retrievers.content import ContentEmbedding
from marketpilot.recommend.stage1 import LargeStage1

sys.path.insert(0, str(Path(__file__).parent))
from planted import group_of, planted  # noqa: E402


def _fit() -> tuple[TwoStagePipeline, pd.DataFrame]:
    frame, listings, users = planted()
    config = PipelineConfig(validation_repeats=2, batch_users=16)
    config.ranker.trees = 30
    config.ranker.min_child_samples = 5
    return fit_pipeline(frame, listings, users, config), frame


@pytest.fixture(scope="module")
def fitted() -> tuple[TwoStagePipeline, pd.DataFrame]:
    return _fit()


def _all_users(pipeline: TwoStagePipeline, frame: pd.DataFrame) -> tuple[np.ndarray, object, list[np.ndarray]]:
    data = Interactions.from_frame(frame, pipeline.catalog)
    users = np.arange(pipeline.catalog.n_users)
    recent = data.histories()
    return users, data.matrix()[users], [recent[u] for u in users]


def test_the_default_threshold_keeps_movielens_sized_catalogues_on_the_dense_path(fitted, monkeypatch) -> None:
    pipeline, _ = fitted
    assert PipelineConfig().ann_min_items > 1682  # MovieLens-100K's items: evaluation unchanged
    assert pipeline.catalog.n_items < pipeline.config.ann_min_items

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the large-catalogue stage 1 ran below the threshold")

    monkeypatch.setattr(LargeStage1, "candidates", boom)
    cat = pipeline.catalog
    assert len(pipeline.recommend(Query(k=5, user=cat.user_index["u1_02"])).items) == 5
    assert set(pipeline.prepare_serving()) <= {"ranker"}  # no index built below the threshold


def test_above_the_threshold_the_large_stage_one_runs(fitted, monkeypatch) -> None:
    pipeline, _ = fitted
    calls = []
    original = LargeStage1.candidates

    def spy(self: LargeStage1, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LargeStage1, "candidates", spy)
    monkeypatch.setattr(pipeline.config, "ann_min_items", 0)
    cat = pipeline.catalog
    history = np.array([cat.item_index[f"i2_{i:02d}"] for i in range(3)])
    got = pipeline.recommend(Query(k=5, user=cat.user_index["u2_05"], history=history))
    assert calls and len(got.items) == 5
    assert sum(group_of(cat.listing_ids[i]) == 2 for i in got.items) >= 4
    assert pipeline._large.index("als") is not None and pipeline._large.index("content") is not None


def test_without_a_mask_the_large_path_gives_the_dense_features(fitted, monkeypatch) -> None:
    """Training batches (exact top lists): every pair of the large path is a dense pair, with
    the same raw score, z-score (moments from the item vectors' Gram matrix / sparse rows) and
    score over the top score; the dense path may add zero-score fillers the large one skips."""
    pipeline, frame = fitted
    users, history, recent = _all_users(pipeline, frame)
    dense = pipeline._candidates_for(users, history, recent)
    monkeypatch.setattr(pipeline.config, "ann_min_items", 0)
    large = pipeline._candidates_for(users, history, recent)
    assert large.names == dense.names
    where = {(r, i): k for k, (r, i) in enumerate(zip(dense.rows.tolist(), dense.items.tolist(), strict=True))}
    pairs = list(zip(large.rows.tolist(), large.items.tolist(), strict=True))
    assert all(p in where for p in pairs)
    a = np.arange(len(pairs))
    b = np.array([where[p] for p in pairs])
    stage1 = [f"{r}_{f}" for r in [*pipeline.retrievers, "popular"] for f in ("score", "z", "rel")]
    assert set(stage1) <= set(large.names)
    for name in stage1:  # the lrank features differ where ties among equal scores break differently
        x, y = large.features[a, large.names.index(name)], dense.features[b, dense.names.index(name)]
        # ALS scores on this tiny data are dot products of large factors that nearly cancel:
        # the dense float32 product and the float64 moments differ in the 3rd digit of z
        assert np.allclose(x, y, rtol=1e-2, atol=1e-4), name


def _planted_embeddings(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    return (centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)


def _embedding_stage1(n: int = 5000, users: int = 40) -> tuple[dict, Popularity, Batch]:
    als = ALS(factors=16)
    als.item_factors = _planted_embeddings(n, seed=1)
    als.user_factors = _planted_embeddings(users, seed=2)
    content = ContentEmbedding(dim=16)
    v = _planted_embeddings(n, seed=3)
    content.item_vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    pop = Popularity(None)
    pop.overall = np.random.default_rng(4).random(n).astype(np.float32)
    import scipy.sparse as sp

    rng = np.random.default_rng(5)
    hist = sp.csr_matrix((np.ones(users * 5, np.float32), (np.repeat(np.arange(users), 5), rng.integers(0, n, users * 5))),
                         shape=(users, n))
    hist.sum_duplicates()
    batch = Batch(np.arange(users), hist, [hist[u].indices.astype(np.int64) for u in range(users)])
    return {"als": als, "content": content}, pop, batch


def _one(batch: Batch, u: int) -> Batch:
    return Batch(batch.users[u:u + 1], batch.history[u:u + 1], [batch.recent[u]])


def test_hnsw_top_lists_match_exact_ones_on_a_planted_example() -> None:
    retrievers, pop, batch = _embedding_stage1()
    depth = {"als": 50, "content": 20, "popular": 20}
    n = 5000
    exact = LargeStage1(ann_max_batch=0)  # matrix-product top lists
    ann = LargeStage1()
    hits = {"als": 0, "content": 0}
    total = {"als": 0, "content": 0}
    for u in range(len(batch)):
        one = _one(batch, u)
        want = _tops(exact, retrievers, pop, one, depth, n)
        got = _tops(ann, retrievers, pop, one, depth, n)
        for name in hits:
            hits[name] += len(np.intersect1d(want[name], got[name]))
            total[name] += len(want[name])
            assert not np.isin(got[name], one.history.indices).any()  # history never a candidate
        assert got["popular"].tolist() == want["popular"].tolist()
    # measured 0.93 (inner product over Gaussian factors, the harder case) and 1.00 (cosine)
    assert hits["als"] / total["als"] >= 0.9
    assert hits["content"] / total["content"] >= 0.98


def _tops(stage1: LargeStage1, retrievers: dict, pop: Popularity, batch: Batch, depth: dict, n: int,
          allowed: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each retriever's top list, read back from the log-rank features."""
    rows, items, cols, names = stage1.candidates(retrievers, pop, batch, [None] * len(batch), allowed, depth, n)
    out = {}
    for name in depth:
        rank = np.expm1(cols[names.index(f"{name}_lrank")])
        inside = rank < depth[name] * 2 - 0.5
        out[name] = items[inside][np.argsort(rank[inside], kind="stable")]
    return out


@pytest.mark.parametrize("share", [0.5, 0.01])
def test_disallowed_listings_never_come_out_of_the_hnsw_path(share: float) -> None:
    retrievers, pop, batch = _embedding_stage1()
    allowed = np.random.default_rng(9).random(5000) < share
    stage1 = LargeStage1()
    for u in range(0, len(batch), 4):
        rows, items, cols, names = stage1.candidates(retrievers, pop, _one(batch, u), [None], allowed,
                                                     {"als": 50, "content": 20, "popular": 20}, 5000)
        assert len(items) > 0
        assert allowed[items].all()


def test_disallowed_listings_never_come_out_of_the_pipeline_above_the_threshold(fitted, monkeypatch) -> None:
    pipeline, _ = fitted
    monkeypatch.setattr(pipeline.config, "ann_min_items", 0)
    cat = pipeline.catalog
    allowed = np.ones(cat.n_items, bool)
    allowed[[cat.item_index[f"i0_{i:02d}"] for i in range(15)]] = False
    for user in range(0, cat.n_users, 7):
        got = pipeline.recommend(Query(k=10, user=user, history=np.array([user % 60])), allowed)
        assert allowed[got.items].all()
    only = np.zeros(cat.n_items, bool)
    only[:2] = True
    assert set(pipeline.recommend(Query(k=10, user=0), only).items.tolist()) <= {0, 1}


@pytest.mark.parametrize("threshold", [0, 10**9])
def test_a_listing_added_after_training_is_retrievable(threshold: int) -> None:
    pipeline, _ = _fit()
    pipeline.config.ann_min_items = threshold
    pipeline.prepare_serving()
    cat = pipeline.catalog
    user = cat.user_index["u1_04"]
    history = np.array([cat.item_index[f"i1_{i:02d}"] for i in range(4)])
    before = pipeline.recommend(Query(k=30, user=user, history=history, pool=20))
    added = pipeline.add_listings(["late_bike", "late_jacket"], ["road bike carbon 77", "vintage leather jacket 78"])
    assert added.tolist() == [60, 61] and pipeline.catalog.n_items == 62
    new = pipeline.catalog.item_index["late_bike"]
    if threshold == 0:
        assert len(pipeline._large.index("content")) == 62  # inserted into the live graph, no rebuild
    cs = pipeline._candidates_for(np.array([user]), pipeline_row(pipeline, history), [history])
    assert new in cs.items  # its content embedding makes it a candidate for a bike buyer
    pooled = pipeline.recommend(Query(k=30, user=user, history=history, pool=20))
    assert new in pooled.items  # offered in the re-ranking pool, as a never-seen listing
    assert pipeline.catalog.item_index["late_jacket"] not in pooled.items[:10]
    allowed = np.ones(pipeline.catalog.n_items, bool)
    allowed[new] = False
    assert new not in pipeline.recommend(Query(k=30, user=user, history=history, pool=20), allowed).items
    assert len(before.items) == 30


def pipeline_row(pipeline: TwoStagePipeline, history: np.ndarray) -> object:
    import scipy.sparse as sp

    return sp.csr_matrix((np.ones(len(history), np.float32), (np.zeros(len(history), np.int64), history)),
                         shape=(1, pipeline.catalog.n_items))


def test_the_item_item_sparse_rows_are_the_retrievers_own_scores(fitted) -> None:
    """The sparse products stage 1 takes for `cooc`, `near` and `seq` give exactly `score()`."""
    from marketpilot.recommend.stage1 import _sparse_scores

    pipeline, frame = fitted
    users, history, recent = _all_users(pipeline, frame)
    batch = Batch(users, history.tocsr(), recent)
    for name in ("cooc", "near", "seq"):
        r = pipeline.retrievers[name]
        want = r.score(batch)
        for rows in (_sparse_scores(r, batch), [_sparse_scores(r, _one(batch, u))[0] for u in range(len(batch))]):
            got = np.zeros_like(want)
            for u, (idx, val) in enumerate(rows):
                got[u, idx] = val
            assert np.allclose(got, want, atol=1e-6), name


def test_refitted_stage_one_never_reads_a_previous_fit_from_the_caches(monkeypatch) -> None:
    """Training refits the retrievers and popularity per fold: each fold's features must come
    from that fold's fit (a stale cache would leak held-out interactions into the features)."""
    pipeline, frame = _fit()
    monkeypatch.setattr(pipeline.config, "ann_min_items", 0)
    data = Interactions.from_frame(frame, pipeline.catalog)
    users, history, recent = _all_users(pipeline, frame)
    for seed in range(4):
        keep = np.random.default_rng(seed).random(len(data)) < 0.6
        pipeline._fit_stage1(data.take(np.flatnonzero(keep)))
        cs = pipeline._candidates_for(users, history, recent)
        region = [pipeline._region_of(int(u)) for u in users]
        want = np.array([pipeline.popularity.scores([f"region:{region[r]}"])[i] for r, i in zip(cs.rows, cs.items,
                                                                                                  strict=True)])
        assert np.allclose(cs.features[:, cs.names.index("popular_score")], want)
        als = pipeline.retrievers["als"]
        got = cs.features[:, cs.names.index("als_score")]
        assert np.allclose(got, np.sum(als.user_factors[users[cs.rows]] * als.item_factors[cs.items], axis=1), atol=1e-5)


def test_requests_during_add_listings_never_fail_or_see_half_grown_arrays() -> None:
    """Requests on other threads while listings are added in batches: each finishes on a
    consistent model (before or after a batch) and nothing it returns is out of range."""
    import threading

    pipeline, _ = _fit()
    pipeline.config.ann_min_items = 0  # the large-catalogue path, whose arrays add_listings grows
    pipeline.prepare_serving()
    cat = pipeline.catalog
    old_mask = np.ones(cat.n_items, bool)  # built before the additions: shorter than the catalogue
    errors: list[BaseException] = []
    done = threading.Event()

    def requests(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not done.is_set():
                user = int(rng.integers(cat.n_users))
                got = pipeline.recommend(Query(k=20, user=user, history=rng.integers(0, 60, 5), pool=10),
                                         old_mask if seed % 2 else None)
                assert (got.items >= 0).all() and (got.items < pipeline.catalog.n_items).all()
                if seed % 2:
                    assert (got.items < len(old_mask)).all()  # added listings stay hidden for it
        except BaseException as exc:
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    threads = [threading.Thread(target=requests, args=(seed,)) for seed in range(4)]
    try:
        for t in threads:
            t.start()
        for b in range(20):
            ids = [f"late_{b}_{i}" for i in range(5)]
            pipeline.add_listings(ids, [f"road bike carbon {b} {i}" for i in range(5)], categories=[None] * 5)
    finally:
        done.set()
        for t in threads:
            t.join(60)
        sys.setswitchinterval(interval)
    assert errors == []
    assert pipeline.catalog.n_items == 60 + 100


def _similar_both_ways(pipeline: TwoStagePipeline, monkeypatch, item: int, k: int,
                       allowed: np.ndarray | None) -> tuple[object, object]:
    dense = pipeline.similar(item, k, allowed)
    with monkeypatch.context() as m:
        m.setattr(pipeline.config, "ann_min_items", 0)
        large = pipeline.similar(item, k, allowed)
    return dense, large


def test_above_the_threshold_similar_scores_a_candidate_list_as_the_dense_path_scores_the_catalogue(
        fitted, monkeypatch) -> None:
    """`similar()` of a large catalogue scores only candidates (co-occurrence row, HNSW content
    neighbours, the seller's listings, popular fillers) with the dense blend's exact z-scores:
    for every item of the planted catalogue the same neighbours, in the same order, with the
    same scores, with and without an availability mask."""
    pipeline, _ = fitted
    n = pipeline.catalog.n_items
    assert {"ease", "cooc", "content"} <= set(pipeline.retrievers)  # every part of the blend is compared
    assert pipeline.item_sellers is not None and (pipeline.item_sellers >= 0).all()
    calls = []
    original = LargeStage1.similar

    def spy(self: LargeStage1, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LargeStage1, "similar", spy)
    rng = np.random.default_rng(0)
    masks = [None, rng.random(n) < 0.5]
    for allowed in masks:
        for item in range(n):
            dense, large = _similar_both_ways(pipeline, monkeypatch, item, 10, allowed)
            assert list(large.items) == list(dense.items), (item, allowed is None)
            assert np.allclose(large.scores, dense.scores, atol=1e-4)
            assert item not in set(large.items.tolist())
            if allowed is not None:
                assert allowed[large.items].all()
    assert len(calls) == 2 * n


def test_similar_on_a_large_catalogue_fills_up_with_popular_listings_and_honours_an_empty_mask(
        fitted, monkeypatch) -> None:
    pipeline, _ = fitted
    monkeypatch.setattr(pipeline.config, "ann_min_items", 0)
    n = pipeline.catalog.n_items
    got = pipeline.similar(0, n + 5)  # more than there are: every other listing, once
    assert sorted(got.items.tolist()) == list(range(1, n))
    assert len(pipeline.similar(0, 5, np.zeros(n, bool)).items) == 0
    only = np.zeros(n, bool)
    only[[3, 7]] = True
    assert sorted(pipeline.similar(0, 5, only).items.tolist()) == [3, 7]
