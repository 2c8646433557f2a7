"""Approximate nearest neighbours over item embeddings (hnswlib HNSW graph).

Labels are catalogue item indices, so results plug straight into `Candidates`. New listings
are inserted into the live graph (:meth:`AnnIndex.add`; the capacity grows by
``resize_index``, which re-allocates but does not rebuild the graph), so a listing created
after training is retrievable by its content embedding at once. Delisted items can be
hidden with :meth:`AnnIndex.remove` (``mark_deleted``) or per query with `allowed`.

Filtered queries: when most items are allowed, the index over-fetches and drops the rest
(cheap, all in C++); when the mask is selective (below `filter_below`) and leaves at most
`exact_below` items, those are scored exactly with one matrix product (a graph walk would
visit mostly forbidden nodes); only a selective mask over a huge catalogue falls back to
hnswlib's filter predicate (a Python call per visited node). :meth:`AnnIndex.exact` is the brute-force answer the recall is measured against
(:func:`recall_at_k`).

Inner-product search (``space="ip"``) is reduced to Euclidean search (Bachrach et al. 2014,
"Speeding up the Xbox recommender system using a Euclidean transformation for inner-product
spaces"): each item vector x is stored in the graph as (x, sqrt(R^2 - |x|^2)) with R the
longest item norm, the query as (q/|q|, 0), so the squared distance 1 + R^2 - 2 q.x/|q| falls
as the inner product grows. hnswlib's own inner-product space ranks by 1 - q.x, which is not a
metric: with strongly regularised ALS factors (item norms around 1e-3) every distance sat
within 1e-4 of 1, the graph was built on near-ties and no query for 50 items could be filled.
Results are re-scored exactly from the stored vectors, so the scores are true inner products.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import hnswlib
import numpy as np
import numpy.typing as npt

from marketpilot.recommend.model import BoolArray, Candidates, IntArray

Space = Literal["cosine", "ip"]
Vectors = npt.NDArray[np.float32]


class AnnIndex:
    """An HNSW index of item vectors with incremental adds.

    ``space="cosine"`` scores are cosine similarities (hnswlib's distance is ``1 -
    similarity``; this class converts it back), ``"ip"`` exact inner products (the graph is
    Euclidean over augmented vectors, see the module docstring).
    """

    def __init__(
        self,
        dim: int,
        *,
        space: Space = "cosine",
        capacity: int = 1024,
        m: int = 16,
        ef_construction: int = 100,
        ef: int = 64,
        seed: int = 42,
        threads: int = -1,
        filter_below: float = 0.2,
        exact_below: int = 200_000,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        if space not in ("cosine", "ip"):
            raise ValueError(f"space must be 'cosine' or 'ip', got {space!r}")
        self.dim = dim
        self.space: Space = space
        self.ef = ef
        self.threads = threads
        self.filter_below = filter_below
        self.exact_below = exact_below
        self._graph_settings = {"ef_construction": ef_construction, "M": m, "random_seed": seed}
        self._radius = 0.0  # ip: the norm R of the augmentation, fixed until a longer vector arrives
        self._index = self._new_graph(max(capacity, 1))
        self._vectors = np.zeros((0, dim), dtype=np.float32)  # kept for exact search / recall
        self._present = np.zeros(0, dtype=np.bool_)  # label is in the index and not removed
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._index.get_current_count())

    def add(self, vectors: npt.ArrayLike, labels: npt.ArrayLike) -> None:
        """Insert items (or replace the vector of a label already present); no rebuild."""
        x = self._check(vectors)
        ids = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(ids) != len(x):
            raise ValueError(f"{len(x)} vectors but {len(ids)} labels")
        if len(ids) and ids.min() < 0:
            raise ValueError("labels must be non-negative item indices")
        with self._lock:
            if self.space == "ip" and len(x):
                longest = float(np.sqrt((x.astype(np.float64) ** 2).sum(axis=1).max()))
                if longest > self._radius:
                    self._regraph(longest)
            need = len(self) + len(ids)
            capacity = self._index.get_max_elements()
            if need > capacity:
                self._index.resize_index(max(need, 2 * capacity))
            self._index.add_items(self._graph_items(x), ids, num_threads=self.threads)
            top = int(ids.max()) + 1 if len(ids) else 0
            if top > len(self._vectors):
                size = max(top, 2 * len(self._vectors))
                grown = np.zeros((size, self.dim), dtype=np.float32)
                grown[: len(self._vectors)] = self._vectors
                present = np.zeros(size, dtype=np.bool_)
                present[: len(self._present)] = self._present
                self._vectors, self._present = grown, present
            self._vectors[ids] = self._normalised(x)
            self._present[ids] = True

    def _new_graph(self, capacity: int) -> hnswlib.Index:
        if self.space == "ip":
            graph = hnswlib.Index(space="l2", dim=self.dim + 1)
        else:
            graph = hnswlib.Index(space="cosine", dim=self.dim)
        graph.init_index(max_elements=capacity, **self._graph_settings)
        graph.set_ef(self.ef)
        return graph

    def _graph_items(self, x: Vectors) -> Vectors:
        """What the graph stores for item vectors: as given (cosine), augmented (ip)."""
        if self.space != "ip":
            return x
        slack = self._radius**2 - (x.astype(np.float64) ** 2).sum(axis=1)
        return np.hstack([x, np.sqrt(np.maximum(slack, 0.0))[:, None]]).astype(np.float32)

    def _graph_query(self, x: Vectors) -> Vectors:
        if self.space != "ip":
            return x
        norm = float(np.linalg.norm(x[0]))
        unit = x / norm if norm > 0 else x
        return np.hstack([unit, np.zeros((1, 1), np.float32)]).astype(np.float32)

    def _regraph(self, radius: float) -> None:
        """ip: a vector longer than R arrived; rebuild the graph around the new R (the
        augmentation of every stored item depends on it). Items of one fit arrive together, so
        this happens at the first add and when a refit's vectors outgrow the old ones."""
        self._radius = radius
        labels = np.flatnonzero(self._present).astype(np.int64)
        graph = self._new_graph(max(self._index.get_max_elements(), 1))
        if len(labels):
            graph.add_items(self._graph_items(self._vectors[labels]), labels, num_threads=self.threads)
        self._index = graph

    def remove(self, label: int) -> None:
        """Hide an item from every later query (it stays in the graph as a waypoint). Under the
        same lock as `add`: a removal landing while `add` rebuilds the graph (`_regraph`) or
        grows the label arrays would otherwise mark the old graph and array, and be lost."""
        with self._lock:
            self._index.mark_deleted(int(label))
            self._present[int(label)] = False

    def query(self, vector: npt.ArrayLike, k: int, allowed: BoolArray | None = None) -> Candidates:
        """The k nearest items to one vector, best first, none with ``allowed[i] == False``."""
        x = self._check(vector)
        if len(x) != 1:
            raise ValueError(f"query takes one vector, got {len(x)}")
        n = len(self)
        if n == 0 or k < 1:
            return Candidates(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        if allowed is None:
            return self._knn(x, min(k, n))
        share = float(np.count_nonzero(allowed)) / max(len(allowed), 1)
        if share == 0.0:
            return Candidates(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        if share >= self.filter_below:
            fetch = min(n, int(np.ceil(k / share * 1.5)) + 8)
            while True:
                got = self._knn(x, fetch)
                inside = got.items < len(allowed)
                inside[inside] = allowed[got.items[inside]]
                if inside.sum() >= k or fetch >= n:
                    return Candidates(got.items[inside][:k], got.scores[inside][:k])
                fetch = min(n, fetch * 4)
        labels = self._labels(allowed)
        if len(labels) <= self.exact_below:  # few enough to score them all: exact and fast
            return self._rank(self._normalised(x)[0], labels, k)
        return self._knn(x, min(k, n), allowed)

    def _labels(self, allowed: BoolArray | None) -> IntArray:
        """Indexed, not removed labels, within `allowed` if given."""
        present = self._present
        if allowed is None:
            return np.flatnonzero(present).astype(np.int64)
        m = min(len(present), len(allowed))
        return np.flatnonzero(present[:m] & allowed[:m]).astype(np.int64)

    def _knn(self, x: Vectors, k: int, allowed: BoolArray | None = None) -> Candidates:
        """The graph's k nearest; with `allowed`, through hnswlib's filter predicate."""
        self._index.set_ef(max(self.ef, k))
        keep = None
        if allowed is not None:
            size = len(allowed)

            def keep(label: int) -> bool:
                return label < size and bool(allowed[label])
        try:
            labels, distances = self._index.knn_query(self._graph_query(x), k=k, num_threads=1, filter=keep)
        except RuntimeError:  # fewer than k reachable items (passed the filter)
            return self._exact_filtered(x, k, allowed)
        items = labels[0].astype(np.int64)
        if self.space == "ip":  # exact inner products, best first (the graph's distance is a proxy)
            scores = self._vectors[items] @ x[0]
            order = np.argsort(-scores, kind="stable")
            return Candidates(items[order], scores[order].astype(np.float32))
        return Candidates(items, (1.0 - distances[0]).astype(np.float32))

    def _exact_filtered(self, x: Vectors, k: int, allowed: BoolArray | None) -> Candidates:
        """The graph could not fill the query: answer it exactly."""
        return self.exact(x, k, allowed)

    def exact(self, vector: npt.ArrayLike, k: int, allowed: BoolArray | None = None) -> Candidates:
        """Brute-force top k over every indexed item (the reference for recall)."""
        x = self._normalised(self._check(vector))[0]
        return self._rank(x, self._labels(allowed), k)

    def similarity(self, vector: npt.ArrayLike, labels: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Exact similarities of one vector to the given labels' stored vectors."""
        x = self._normalised(self._check(vector))[0]
        return (self._vectors[np.asarray(labels, dtype=np.int64)] @ x).astype(np.float32)

    def _rank(self, x: Vectors, labels: IntArray, k: int) -> Candidates:
        if len(labels) == 0:
            return Candidates(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        sims = self._vectors[labels] @ x
        k = min(k, len(labels))
        top = np.argpartition(-sims, k - 1)[:k] if k < len(labels) else np.arange(len(labels))
        top = top[np.argsort(-sims[top], kind="stable")]
        return Candidates(labels[top], sims[top].astype(np.float32))

    def save(self, path: Path) -> None:
        self._index.save_index(str(path))
        np.save(path.with_suffix(".vectors.npy"), self._vectors)
        np.save(path.with_suffix(".radius.npy"), np.array([self._radius]))

    @classmethod
    def load(cls, path: Path, dim: int, *, space: Space = "cosine", ef: int = 64) -> AnnIndex:
        index = cls(dim, space=space, ef=ef)
        index._index.load_index(str(path), allow_replace_deleted=False)
        index._index.set_ef(ef)
        index._radius = float(np.load(path.with_suffix(".radius.npy"))[0])
        index._vectors = np.load(path.with_suffix(".vectors.npy"))
        index._present = np.zeros(len(index._vectors), dtype=np.bool_)
        index._present[np.asarray(index._index.get_ids_list(), dtype=np.int64)] = True
        return index

    def _check(self, vectors: npt.ArrayLike) -> Vectors:
        x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"vectors must have {self.dim} columns, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("vectors must be finite")
        return x

    def _normalised(self, x: Vectors) -> Vectors:
        if self.space == "ip":
            return x
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def recall_at_k(
    index: AnnIndex,
    queries: npt.ArrayLike,
    k: int,
    allowed: BoolArray | None = None,
    *,
    by: Literal["id", "score"] = "id",
    tolerance: float = 1e-3,
) -> float:
    """Mean share of the exact top k that the ANN query returns, over the query vectors.

    ``by="id"`` counts the exact top k's labels among the ANN's. When many items tie at the
    k-th similarity (duplicate texts, say), the exact top k is one arbitrary pick among them
    and an ANN that returns equally good items scores low. ``by="score"`` counts an ANN
    result as a hit when its exact similarity (recomputed from the stored vectors, not the
    graph's distance) is at least the exact k-th similarity minus `tolerance`: the share of
    the ANN's answer that an exact search could (nearly) equally have returned. This is
    ann-benchmarks' "k-nn" recall, whose default distance slack is also 1e-3.
    """
    if by not in ("id", "score"):
        raise ValueError(f"by must be 'id' or 'score', got {by!r}")
    q = np.asarray(queries, dtype=np.float32)
    hits = 0
    total = 0
    for row in q:
        truth = index.exact(row, k, allowed)
        if len(truth.items) == 0:
            continue
        got = index.query(row, k, allowed).items
        if by == "id":
            hits += len(np.intersect1d(truth.items, got))
        else:
            exact_scores = index.similarity(row, got)
            hits += int(np.count_nonzero(exact_scores >= float(truth.scores[-1]) - tolerance))
        total += len(truth.items)
    return hits / total if total else 1.0
