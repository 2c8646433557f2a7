"""The HNSW item index: incremental adds without a rebuild, filtered queries that never
return a forbidden item, and recall against exact search."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from marketpilot.recommend.ann import AnnIndex, recall_at_k

DIM = 16


def clustered(n: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Embeddings as real item embeddings look: tight groups around category centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    return (centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, DIM))).astype(np.float32)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(4000)


@pytest.fixture
def index(vectors: np.ndarray) -> AnnIndex:
    ann = AnnIndex(DIM, capacity=1000, seed=1)
    ann.add(vectors[:3000], np.arange(3000))
    return ann


def test_recall_at_10_against_exact_search_is_high(index: AnnIndex, vectors: np.ndarray) -> None:
    queries = clustered(100, seed=7)
    assert recall_at_k(index, queries, 10) >= 0.95


def test_score_recall_counts_tied_items_that_id_recall_misses() -> None:
    # 50 distinct vectors, each repeated 40 times: the exact top 10 of a query is one
    # arbitrary pick among 40 equals, so id recall is low however good the graph is.
    base = clustered(50, seed=3)
    ann = AnnIndex(DIM, capacity=2000, seed=2)
    ann.add(np.repeat(base, 40, axis=0), np.arange(2000))
    queries = base[:20] + 0.01 * np.random.default_rng(4).normal(size=(20, DIM)).astype(np.float32)
    # (hnswlib's graph itself can miss a few among so many duplicates: 0.95-1.0 by seed)
    assert recall_at_k(ann, queries, 10) < 0.5
    assert recall_at_k(ann, queries, 10, by="score") >= 0.9


def test_score_recall_counts_a_worse_item_as_a_miss(index: AnnIndex, vectors: np.ndarray) -> None:
    queries = clustered(30, seed=8)
    good = recall_at_k(index, queries, 10, by="score")
    assert good >= recall_at_k(index, queries, 10) >= 0.9
    crippled = AnnIndex(DIM, capacity=3000, seed=1, m=2, ef_construction=2, ef=1)
    crippled.add(vectors[:3000], np.arange(3000))
    assert recall_at_k(crippled, queries, 10, by="score") < good
    with pytest.raises(ValueError, match="by must be"):
        recall_at_k(index, queries, 10, by="rank")  # type: ignore[arg-type]


def test_new_items_are_added_to_the_live_graph_and_found_at_once(index: AnnIndex, vectors: np.ndarray) -> None:
    before = index.query(vectors[0], 5).items.tolist()
    index.add(vectors[3000:], np.arange(3000, 4000))  # beyond the initial capacity: grows, no rebuild
    assert len(index) == 4000
    for label in (3000, 3500, 3999):
        assert index.query(vectors[label], 1).items.tolist() == [label]
    after = index.query(vectors[0], 5).items.tolist()
    assert after[0] == before[0] == 0
    assert recall_at_k(index, clustered(50, seed=9), 10) >= 0.95


def test_filtered_queries_never_return_a_forbidden_item(index: AnnIndex) -> None:
    rng = np.random.default_rng(3)
    queries = clustered(30, seed=5)
    for share in (0.9, 0.5, 0.05, 0.002):  # over-fetch path and predicate path
        allowed = rng.random(3000) < share
        for q in queries:
            got = index.query(q, 10, allowed).items
            assert allowed[got].all()
            assert len(got) == min(10, int(allowed.sum()))
        assert recall_at_k(index, queries, 10, allowed) >= 0.9


def test_selective_masks_over_a_large_index_use_the_graph_filter_and_stay_exact_enough(
    vectors: np.ndarray,
) -> None:
    ann = AnnIndex(DIM, seed=1, exact_below=0)  # never score the allowed subset exhaustively
    ann.add(vectors, np.arange(len(vectors)))
    allowed = np.random.default_rng(4).random(len(vectors)) < 0.05
    for q in clustered(20, seed=6):
        got = ann.query(q, 10, allowed).items
        assert allowed[got].all() and len(got) == 10
    assert recall_at_k(ann, clustered(20, seed=6), 10, allowed) >= 0.9


def test_a_filter_leaving_fewer_than_k_items_returns_exactly_those(vectors: np.ndarray) -> None:
    # hnswlib cannot fill k results through the predicate and raises; the exact fallback
    # scores the allowed items only
    ann = AnnIndex(DIM, seed=1, exact_below=0)
    ann.add(vectors, np.arange(len(vectors)))
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[[5, 500, 3999]] = True
    q = vectors[500]
    got = ann.query(q, 10, allowed)
    assert sorted(got.items.tolist()) == [5, 500, 3999]
    assert got.items[0] == 500
    assert got.items.tolist() == ann.exact(q, 10, allowed).items.tolist()


def test_nothing_allowed_returns_nothing(index: AnnIndex) -> None:
    assert len(index.query(np.ones(DIM), 5, np.zeros(3000, dtype=bool)).items) == 0


def test_removed_items_are_not_returned(index: AnnIndex, vectors: np.ndarray) -> None:
    index.remove(42)
    assert 42 not in index.query(vectors[42], 10).items.tolist()


def test_cosine_scores_are_cosine_similarities(index: AnnIndex, vectors: np.ndarray) -> None:
    q = vectors[10] * 3.0
    got = index.query(q, 3)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = unit[got.items] @ (q / np.linalg.norm(q))
    np.testing.assert_allclose(got.scores, expected, rtol=1e-4, atol=1e-5)
    assert got.items[0] == 10 and got.scores[0] == pytest.approx(1.0, abs=1e-5)


def test_inner_product_space_ranks_by_dot_product() -> None:
    x = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    ann = AnnIndex(2, space="ip")
    ann.add(x, [0, 1, 2])
    got = ann.query([1.0, 0.1], 3)
    assert got.items.tolist() == [1, 0, 2]
    np.testing.assert_allclose(got.scores, [3.0, 1.0, 0.2], rtol=1e-5)
    assert ann.exact([1.0, 0.1], 3).items.tolist() == [1, 0, 2]


def shrunk_factors(n: int, seed: int = 0) -> np.ndarray:
    """Item vectors as strongly regularised ALS leaves them on a sparse catalogue (l2 40 on the
    100k bench: norm median 6e-4, 1 % of items 100-10,000 times longer, every inner product
    with a user positive): one shared direction, log-normal small norms, a few long items."""
    rng = np.random.default_rng(seed)
    directions = 1.0 + 0.1 * rng.normal(size=(n, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    norms = np.exp(rng.normal(np.log(6e-4), 0.7, n))
    long = rng.choice(n, n // 100, replace=False)
    norms[long] = rng.uniform(0.05, 5.0, len(long))
    return (directions * norms[:, None]).astype(np.float32)


def user_factors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.03 * (1.0 + 0.1 * rng.normal(size=(n, DIM)))).astype(np.float32)


def test_inner_product_search_survives_tiny_item_norms() -> None:
    # hnswlib's own inner-product space (distance 1 - q.x, within 1e-3 of 1 for every pair
    # here) built a graph from which no query reached 50 items; the Euclidean reduction does
    x = shrunk_factors(3000)
    ann = AnnIndex(DIM, space="ip", seed=1)
    ann.add(x, np.arange(len(x)))
    queries = user_factors(40, seed=11)
    exact_paths: list[int] = []
    graph_failed = ann._exact_filtered  # the fallback taken when the graph returns too few items

    def counted(*args: object) -> object:
        exact_paths.append(1)
        return graph_failed(*args)  # type: ignore[arg-type]

    ann._exact_filtered = counted  # type: ignore[method-assign,assignment]
    for q in queries:
        got = ann.query(q, 50)
        assert len(got.items) == 50
        np.testing.assert_allclose(got.scores, x[got.items] @ q, rtol=1e-5, atol=1e-9)
        assert (np.diff(got.scores) <= 0).all()
    assert not exact_paths
    del ann._exact_filtered
    assert recall_at_k(ann, queries, 50) >= 0.95


def test_a_longer_inner_product_vector_added_later_is_found() -> None:
    x = shrunk_factors(2000, seed=2)
    ann = AnnIndex(DIM, space="ip", seed=1)
    ann.add(x, np.arange(2000))
    ann.remove(7)
    q = user_factors(1, seed=12)[0]
    champion = (q / np.linalg.norm(q) * 100.0).astype(np.float32)  # longer than every item so far
    ann.add(champion[None, :], [2000])
    got = ann.query(q, 10)
    assert got.items[0] == 2000 and 7 not in got.items.tolist()
    assert recall_at_k(ann, user_factors(20, seed=13), 10) >= 0.95


def test_a_removal_during_a_graph_rebuild_is_not_lost() -> None:
    """A sold-out listing removed while `add` rebuilds the inner-product graph around a longer
    vector stays hidden: the rebuild is held open until the removal has started, and the
    removal must take effect on the graph that is kept, not on the one thrown away."""
    x = shrunk_factors(500, seed=4)
    ann = AnnIndex(DIM, space="ip", seed=1)
    ann.add(x, np.arange(500))
    sold = int(np.argmax(np.linalg.norm(x, axis=1)))  # the longest: first for its own direction
    q = x[sold] / np.linalg.norm(x[sold])
    assert ann.query(q, 5).items[0] == sold
    building, removing = threading.Event(), threading.Event()
    new_graph = ann._new_graph

    def slow_new_graph(capacity: int):  # type: ignore[no-untyped-def]
        building.set()
        removing.wait(5)
        time.sleep(0.2)  # the removal, if not held back, runs to completion meanwhile
        return new_graph(capacity)

    ann._new_graph = slow_new_graph  # type: ignore[method-assign]
    longer = (q * 100.0).astype(np.float32)[None, :]
    adder = threading.Thread(target=ann.add, args=(longer, [500]))
    adder.start()
    assert building.wait(5)
    remover = threading.Thread(target=ann.remove, args=(sold,))
    removing.set()
    remover.start()
    adder.join(10)
    remover.join(10)
    del ann._new_graph
    got = ann.query(q, 20).items.tolist()
    assert got[0] == 500 and sold not in got


def test_save_and_load_keep_the_answers(index: AnnIndex, vectors: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "items.hnsw"
    index.save(path)
    loaded = AnnIndex.load(path, DIM)
    assert len(loaded) == 3000
    assert loaded.query(vectors[5], 5).items.tolist() == index.query(vectors[5], 5).items.tolist()


def test_an_inner_product_index_saved_and_loaded_keeps_its_answers(tmp_path: Path) -> None:
    x = shrunk_factors(1000, seed=3)
    ann = AnnIndex(DIM, space="ip", seed=1)
    ann.add(x, np.arange(1000))
    ann.save(tmp_path / "als.hnsw")
    loaded = AnnIndex.load(tmp_path / "als.hnsw", DIM, space="ip")
    for q in user_factors(5, seed=14):
        assert loaded.query(q, 10).items.tolist() == ann.query(q, 10).items.tolist()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.add(np.ones((2, 3)), [0, 1]), r"vectors must have 16 columns, got shape \(2, 3\)"),
        (lambda a: a.add(np.ones((2, DIM)), [0]), "2 vectors but 1 labels"),
        (lambda a: a.add(np.ones((1, DIM)), [-1]), "labels must be non-negative item indices"),
        (lambda a: a.add(np.full((1, DIM), np.nan), [0]), "vectors must be finite"),
        (lambda a: a.query(np.ones((2, DIM)), 3), "query takes one vector, got 2"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(AnnIndex(DIM))  # type: ignore[operator]


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="space must be 'cosine' or 'ip', got 'l2'"):
        AnnIndex(4, space="l2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dim must be positive, got 0"):
        AnnIndex(0)
