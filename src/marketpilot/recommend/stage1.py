"""Stage 1 for large catalogues: candidates and their features without scoring every listing.

Below `PipelineConfig.ann_min_items` the pipeline scores every listing densely for each user
(`candidates.retrieve` / `score_features`); that is exact and, on a catalogue of a few
thousand items, cheaper than anything else. Above it, :class:`LargeStage1` produces the same
candidate features from work proportional to the user's history and the candidate list:

- **Embedding retrievers** (`als`: user and item factors, inner product; `content`: unit
  vectors, cosine): a one-user request takes its top items from an HNSW index
  (:class:`~marketpilot.recommend.ann.AnnIndex`, built once per fitted retriever, new
  listings inserted with `add`); a batch of users (training, offline scoring) takes the exact
  top items with one matrix product, which is cheaper per user there.
- **Item-item retrievers** (`cooc`, `seq`): the user's score row is the sparse product of
  their history with the fitted item-item matrix; only items with a non-zero score can be
  candidates (the dense path fills a short list up with arbitrary zero-score items).
- **Popularity**: one precomputed order per region, walked until `depth` eligible items.
- Any other retriever (EASE, only fitted up to 20,000 items, or one added later) is scored
  densely as before.

Features are the dense path's, with the same definitions (`candidates.score_features`): raw
score, z-score within the user's row, score over the row's top score, log rank. The per-user
mean and variance are computed over the catalogue minus the user's history without scoring
it: for an embedding retriever from the item vectors' sum and Gram matrix (mean = q.sum / n,
E[s^2] = q'Gq / n, minus the history items' own scores), for a sparse row from its non-zero
entries. Under no availability mask (training, offline scoring) they are exactly the dense
path's values. At serving the moments deliberately ignore the request's mask (sold-out items,
a category filter): the ranker was trained without one, so "z within the catalogue minus the
user's history" is what its features meant in training (the dense path instead normalises
within the request's eligible items). What is approximate is the top lists of the embedding
retrievers for one-user requests (HNSW recall, measured by `benchmarks/bench_recommend_trained`)
and therefore the log ranks of their items.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

import numpy as np
import scipy.sparse as sp

from marketpilot.recommend.ann import AnnIndex
from marketpilot.recommend.candidates import RANK_CAP_FACTOR
from marketpilot.recommend.model import BoolArray, Candidates, Catalog
from marketpilot.recommend.popularity import Popularity
from marketpilot.recommend.retrievers.als import ALS
from marketpilot.recommend.retrievers.base import Batch, ItemToItem, Retriever, binarize
from marketpilot.recommend.retrievers.content import ContentEmbedding
from marketpilot.recommend.retrievers.ease import EASE
from marketpilot.recommend.retrievers.sequence import SessionSequence

if TYPE_CHECKING:
    from marketpilot.recommend.pipeline import TwoStagePipeline

EMBEDDINGS = ("als", "content")
# `similar()`: the retrievers blended, the bonus for the same seller's listings, the weight of
# popularity as a tie-break, and how many more neighbours than asked each list fetches
SIMILAR_RETRIEVERS = ("ease", "cooc", "content")
SAME_SELLER_BONUS = 0.5
POPULARITY_TIE_BREAK = 1e-6
SIMILAR_MARGIN = 32
_GRAM_CHUNK = 65_536


@dataclass(frozen=True)
class AnnSettings:
    """HNSW parameters of the stage-1 indexes (hnswlib: M, ef_construction, ef at query)."""

    m: int = 16
    ef_construction: int = 100
    ef: int = 128
    threads: int = -1


class _Embedding:
    """Item vectors of one embedding retriever, their sum and Gram matrix (the per-user score
    moments without scoring the catalogue) and, once asked for, an HNSW index over them."""

    def __init__(self, vectors: np.ndarray, space: str) -> None:
        self.vectors = vectors
        self.space = space
        self.total = np.zeros(vectors.shape[1], np.float64)
        self.gram = np.zeros((vectors.shape[1], vectors.shape[1]), np.float64)
        self._accumulate(vectors)
        self.index: AnnIndex | None = None
        self.build_seconds = 0.0

    def _accumulate(self, vectors: np.ndarray) -> None:
        for lo in range(0, len(vectors), _GRAM_CHUNK):
            v = vectors[lo:lo + _GRAM_CHUNK].astype(np.float64)
            self.total += v.sum(axis=0)
            self.gram += v.T @ v

    def ensure_index(self, settings: AnnSettings) -> AnnIndex:
        if self.index is None:
            import time

            t0 = time.perf_counter()
            v = self.vectors
            index = AnnIndex(v.shape[1], space="ip" if self.space == "ip" else "cosine", capacity=len(v),
                             m=settings.m, ef_construction=settings.ef_construction, ef=settings.ef,
                             threads=settings.threads)
            labels = self._indexable(v)
            index.add(v[labels], labels)
            self.index = index
            self.build_seconds = time.perf_counter() - t0
        return self.index

    @staticmethod
    def _indexable(v: np.ndarray) -> np.ndarray:
        """Items with a non-zero vector (a zero vector scores 0 for everyone: never a top item)."""
        return np.flatnonzero(np.abs(v).max(axis=1) > 0) if len(v) else np.empty(0, np.int64)

    def extend(self, vectors: np.ndarray, old: int) -> None:
        """The retriever's vectors grew from `old` rows (new listings): add them."""
        new = vectors[old:]
        self.vectors = vectors
        self._accumulate(new)
        if self.index is not None and len(new):
            labels = self._indexable(new)
            if len(labels):
                self.index.add(new[labels], labels + old)


class _Row:
    """One retriever's view of one user: its top eligible items (best first), the raw score of
    any item, and the moments of the user's scores over the catalogue minus their history."""

    __slots__ = ("top", "score_of", "mean", "std", "best")

    def __init__(self, top: np.ndarray, top_scores: np.ndarray, score_of: Callable[[np.ndarray], np.ndarray],
                 total: float, total_sq: float, count: int) -> None:
        self.top = top
        self.score_of = score_of
        mean = total / max(count, 1)
        self.mean = mean
        self.std = float(np.sqrt(max(total_sq / max(count, 1) - mean * mean, 0.0))) + 1e-9
        best = float(top_scores[0]) if len(top_scores) else 0.0
        self.best = abs(best) if np.isfinite(best) and abs(best) > 1e-12 else 1.0


class LargeStage1:
    """Candidates for a batch of users of a large catalogue (see the module docstring)."""

    def __init__(self, settings: AnnSettings | None = None, ann_max_batch: int = 1) -> None:
        self.settings = settings or AnnSettings()
        # batches of at most this many users query the HNSW indexes; larger ones (training,
        # offline scoring) take exact top lists with a matrix product
        self.ann_max_batch = ann_max_batch
        self._embeddings: dict[str, _Embedding] = {}
        self._popular: dict[str | None, tuple[Popularity, np.ndarray, np.ndarray, np.ndarray, float, float]] = {}
        self._lock = threading.Lock()
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._by_popularity: tuple[np.ndarray, np.ndarray] | None = None
        self._by_seller: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- cached per fitted state --------------------------------------------------------------

    def embedding(self, name: str, retriever: Retriever) -> _Embedding:
        vectors = _vectors_of(retriever)
        if vectors is None:
            raise RuntimeError(f"{name}: fit() first")
        got = self._embeddings.get(name)
        if got is None or got.vectors is not vectors:
            with self._lock:
                got = self._embeddings.get(name)
                if got is None or got.vectors is not vectors:
                    got = _Embedding(vectors, "ip" if name == "als" else "cosine")
                    self._embeddings[name] = got
        return got

    def prepare(self, retrievers: Mapping[str, Retriever]) -> dict[str, float]:
        """Build the HNSW indexes now (serving start-up) rather than in the first request;
        returns the build time per index, seconds."""
        out = {}
        for name in EMBEDDINGS:
            r = retrievers.get(name)
            if r is not None and _vectors_of(r) is not None:
                emb = self.embedding(name, r)
                with self._lock:
                    emb.ensure_index(self.settings)
                out[name] = emb.build_seconds
        return out

    def index(self, name: str) -> AnnIndex | None:
        got = self._embeddings.get(name)
        return None if got is None else got.index

    def sorted_popularity(self, item_popularity: np.ndarray) -> np.ndarray:
        """`np.sort(item_popularity)`, kept while the array is the same object."""
        got = self._sorted
        if got is None or got[0] is not item_popularity:
            got = (item_popularity, np.sort(item_popularity))
            self._sorted = got
        return got[1]

    def _popular_of(self, popularity: Popularity, region: str | None) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Region scores, their descending order, sum and sum of squares, kept while the
        fitted popularity (and its arrays) are the same objects: training refits it per fold."""
        got = self._popular.get(region)
        if got is None or got[0] is not popularity or got[1] is not popularity.overall:
            s = popularity.scores([f"region:{region}"] if region else [])
            order = np.argsort(-s, kind="stable")
            s64 = s.astype(np.float64)
            got = (popularity, popularity.overall, s, order, float(s64.sum()), float((s64 * s64).sum()))
            if len(self._popular) > 256:
                self._popular.clear()
            self._popular[region] = got
        return got[2], got[3], got[4], got[5]

    def _popularity_order(self, item_popularity: np.ndarray) -> np.ndarray:
        """Items by descending popularity (stable), kept while the array is the same object."""
        got = self._by_popularity
        if got is None or got[0] is not item_popularity:
            got = (item_popularity, np.argsort(-item_popularity, kind="stable"))
            self._by_popularity = got
        return got[1]

    def _seller_items(self, sellers: np.ndarray, seller: int) -> np.ndarray:
        """The items of one seller, from a seller-sorted order kept while `sellers` is the
        same object (adding listings makes a new array)."""
        got = self._by_seller
        if got is None or got[0] is not sellers:
            order = np.argsort(sellers, kind="stable")
            got = (sellers, order, sellers[order])
            self._by_seller = got
        _, order, sorted_sellers = got
        lo, hi = np.searchsorted(sorted_sellers, [seller, seller + 1])
        return order[lo:hi]

    # -- similar listings ------------------------------------------------------------------------

    def similar(self, retrievers: Mapping[str, Retriever], item: int, k: int, allowed: BoolArray | None,
                sellers: np.ndarray | None, item_popularity: np.ndarray) -> Candidates:
        """`TwoStagePipeline.similar` above the threshold: the dense path's blend (z-score of
        each of `SIMILAR_RETRIEVERS` over the whole catalogue, plus the same-seller bonus and
        the popularity tie-break), computed for a candidate list instead of every listing.
        Candidates: the item's non-zero co-occurrence row, its nearest content neighbours
        from the HNSW index, its seller's listings and the most popular allowed listings (what
        the dense path falls back on when nothing else scores). The z-scores use the exact
        catalogue moments (sparse row sums; the content vectors' sum and Gram matrix), so a
        candidate's score is the dense path's; what is approximate is only the HNSW list."""
        n = len(item_popularity)
        pool: list[np.ndarray] = []
        parts: list[Callable[[np.ndarray], np.ndarray]] = []
        fetch = k + SIMILAR_MARGIN
        for name in SIMILAR_RETRIEVERS:
            r = retrievers.get(name)
            if r is None:
                continue
            if isinstance(r, ItemToItem):
                assert r.weights is not None
                idx, val = _gather(r.weights, np.array([item], np.int64), np.ones(1, np.float32))
                v64 = val.astype(np.float64)
                mean = float(v64.sum()) / n
                std = float(np.sqrt(max(float((v64 * v64).sum()) / n - mean * mean, 0.0)))
                if std > 0:
                    pool.append(idx)
                    parts.append(partial(_sparse_z, idx, v64, mean, std))
            elif isinstance(r, ContentEmbedding):
                emb = self.embedding(name, r)
                q = emb.vectors[item].astype(np.float32)
                q = q / max(float(np.linalg.norm(q)), 1e-9)  # the profile of a one-item history
                q64 = q.astype(np.float64)
                mean = float(q64 @ emb.total) / n
                std = float(np.sqrt(max(float(q64 @ emb.gram @ q64) / n - mean * mean, 0.0)))
                if std > 0:
                    with self._lock:
                        index = emb.ensure_index(self.settings)
                    got = index.query(q, fetch, allowed)
                    pool.append(got.items[got.items < n])
                    parts.append(partial(_embedding_z, emb.vectors, q, mean, std))
            else:  # EASE (fitted only up to 20,000 items) or another dense retriever
                row = sp.csr_matrix((np.ones(1, np.float32), ([0], [item])), shape=(1, n))
                dense = r.score(Batch(np.array([-1]), row, [np.array([item])]))[0].astype(np.float64)
                std = float(dense.std())
                if std > 0:
                    z = (dense - dense.mean()) / std
                    pool.append(_top_of_dense(z, np.array([item], np.int64), allowed, fetch)[0])
                    parts.append(z.__getitem__)
        if sellers is not None and sellers[item] >= 0:
            pool.append(self._seller_items(sellers, int(sellers[item])))
        by_popularity = self._popularity_order(item_popularity)
        span = fetch
        while True:  # the most popular allowed listings: enough to fill k when nothing else scores
            chunk = by_popularity[:span]
            ok = chunk != item if allowed is None else allowed[chunk] & (chunk != item)
            if np.count_nonzero(ok) >= k or span >= n:
                break
            span = min(n, span * 4)
        pool.append(chunk[ok][:k])
        items = np.unique(np.concatenate(pool)).astype(np.int64)
        keep = items != item
        if allowed is not None:
            keep &= allowed[items]
        items = items[keep]
        total = np.zeros(len(items), np.float64)
        for part in parts:
            total += part(items)
        if sellers is not None and sellers[item] >= 0:
            total += SAME_SELLER_BONUS * (sellers[items] == sellers[item])
        total += POPULARITY_TIE_BREAK * item_popularity[items] / max(float(item_popularity.max(initial=0.0)), 1.0)
        k_eff = min(k, len(items))
        if k_eff <= 0:
            return Candidates(np.empty(0, np.int64), np.empty(0, np.float32))
        top = np.argpartition(-total, k_eff - 1)[:k_eff]
        top = top[np.argsort(-total[top], kind="stable")]
        return Candidates(items[top], total[top].astype(np.float32))

    # -- candidates ----------------------------------------------------------------------------

    def candidates(
        self, retrievers: Mapping[str, Retriever], popularity: Popularity, batch: Batch, regions: list[str | None],
        allowed: BoolArray | None, depth: Mapping[str, int], n_items: int,
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[str]]:
        """(rows, items, feature columns, feature names) in the dense path's layout: pairs
        grouped by row (rows ascending, items ascending within a row), per retriever (in
        `retrievers` order, then ``popular``) raw score, z, rel and, when it has a depth, lrank."""
        b = len(batch)
        history = batch.history.tocsr()
        excluded = []
        for row in range(b):
            seen = history.indices[history.indptr[row]:history.indptr[row + 1]]
            recent = batch.recent[row] if row < len(batch.recent) else np.empty(0, np.int64)
            ex = np.unique(np.concatenate([seen.astype(np.int64), np.asarray(recent, np.int64)]))
            excluded.append(ex[(ex >= 0) & (ex < n_items)])
        use_ann = b <= self.ann_max_batch
        views: dict[str, list[_Row]] = {}
        for name, r in retrievers.items():
            n = min(depth.get(name, 0), n_items)
            if name in EMBEDDINGS and _vectors_of(r) is not None:
                views[name] = self._embedding_rows(name, r, batch, excluded, allowed, n, n_items, use_ann)
            elif isinstance(r, ItemToItem | SessionSequence):
                views[name] = _sparse_rows(_sparse_scores(r, batch), excluded, allowed, n, n_items)
            else:
                views[name] = _dense_rows(r.score(batch), excluded, allowed, n, n_items)
        views["popular"] = [self._popular_row(popularity, regions[row], excluded[row], allowed,
                                              min(depth.get("popular", 0), n_items), n_items) for row in range(b)]

        per_row_items = []
        for row in range(b):
            tops = [views[name][row].top for name in views]
            per_row_items.append(np.unique(np.concatenate(tops)).astype(np.int64) if tops else np.empty(0, np.int64))
        rows = np.repeat(np.arange(b), [len(x) for x in per_row_items]).astype(np.int64)
        items = np.concatenate(per_row_items).astype(np.int64) if b else np.empty(0, np.int64)
        cols: list[np.ndarray] = []
        names: list[str] = []
        for name, per_row in views.items():
            n = min(depth.get(name, 0), n_items)
            if b == 1:  # a request: the same columns without the per-row assembly
                view, its = per_row[0], per_row_items[0]
                raw = view.score_of(its).astype(np.float32).astype(np.float64)
                cols += [raw, (raw - view.mean) / view.std, raw / view.best]
                names += [f"{name}_score", f"{name}_z", f"{name}_rel"]
                if n > 0:
                    rank = np.full(len(its), n * RANK_CAP_FACTOR, np.float32)
                    rank[np.searchsorted(its, view.top)] = np.arange(len(view.top), dtype=np.float32)
                    cols.append(np.log1p(rank).astype(np.float64))
                    names.append(f"{name}_lrank")
                continue
            raw = np.empty(len(items), np.float64)
            z = np.empty(len(items), np.float64)
            rel = np.empty(len(items), np.float64)
            rank = np.full(len(items), n * RANK_CAP_FACTOR, np.float32)
            lo = 0
            for row in range(b):
                its = per_row_items[row]
                hi = lo + len(its)
                view = per_row[row]
                s = view.score_of(its).astype(np.float32).astype(np.float64)
                raw[lo:hi] = s
                z[lo:hi] = (s - view.mean) / view.std
                rel[lo:hi] = s / view.best
                if len(view.top):
                    rank[lo + np.searchsorted(its, view.top)] = np.arange(len(view.top), dtype=np.float32)
                lo = hi
            cols += [raw, z, rel]
            names += [f"{name}_score", f"{name}_z", f"{name}_rel"]
            if n > 0:
                cols.append(np.log1p(rank).astype(np.float64))
                names.append(f"{name}_lrank")
        return rows, items, cols, names

    def _embedding_rows(self, name: str, r: Retriever, batch: Batch, excluded: list[np.ndarray],
                        allowed: BoolArray | None, n: int, n_items: int, use_ann: bool) -> list[_Row]:
        emb = self.embedding(name, r)
        v = emb.vectors
        q = r.user_vectors(batch) if isinstance(r, ALS) else cast(ContentEmbedding, r).profiles(batch)
        q = np.ascontiguousarray(q, dtype=np.float32)
        q64 = q.astype(np.float64)
        totals = q64 @ emb.total
        squares = np.einsum("ij,jk,ik->i", q64, emb.gram, q64)
        live = np.abs(q).max(axis=1) > 0 if len(q) else np.zeros(0, bool)
        dense = None
        if not use_ann and n > 0 and live.any():
            dense = q @ v.T
        index = None
        if use_ann and n > 0 and live.any():
            with self._lock:
                index = emb.ensure_index(self.settings)
        out = []
        for i in range(len(q)):
            ex = excluded[i]
            s_ex = (v[ex] @ q[i]).astype(np.float64) if len(ex) else np.empty(0)
            top = np.empty(0, np.int64)
            top_scores = np.empty(0, np.float32)
            if n > 0 and live[i]:
                if index is not None:
                    got = index.query(q[i], n + len(ex), allowed)
                    keep = _outside(got.items, ex) & (got.items < n_items)
                    top, top_scores = got.items[keep][:n], got.scores[keep][:n]
                elif dense is not None:
                    top, top_scores = _top_of_dense(dense[i], ex, allowed, n)
            out.append(_Row(top, top_scores, partial(_dot, v, q[i]),
                            float(totals[i] - s_ex.sum()), float(squares[i] - (s_ex * s_ex).sum()),
                            n_items - len(ex)))
        return out

    def _popular_row(self, popularity: Popularity, region: str | None, ex: np.ndarray, allowed: BoolArray | None,
                     n: int, n_items: int) -> _Row:
        s, order, total, total_sq = self._popular_of(popularity, region)
        top = np.empty(0, np.int64)
        if n > 0:
            need = n + len(ex)
            share = 1.0 if allowed is None else max(float(np.count_nonzero(allowed)) / max(len(allowed), 1), 1e-6)
            span = min(len(order), int(need / share * 1.5) + 16)
            while True:
                chunk = order[:span]
                ok = _outside(chunk, ex)
                if allowed is not None:
                    ok &= allowed[chunk]
                top = chunk[ok][:n]
                if len(top) >= n or span >= len(order):
                    break
                span = min(len(order), span * 4)
        s_ex = s[ex].astype(np.float64)
        return _Row(top, s[top], s.__getitem__, total - float(s_ex.sum()),
                    total_sq - float((s_ex * s_ex).sum()), n_items - len(ex))


def _outside(items: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """~np.isin(items, excluded), without isin's set-up when nothing is excluded (a user with
    no history: every retriever of every such request asks)."""
    if len(excluded) == 0:
        return np.ones(len(items), bool)
    return np.isin(items, excluded, invert=True)


def _dot(vectors: np.ndarray, query: np.ndarray, items: np.ndarray) -> np.ndarray:
    return np.asarray(vectors[items] @ query)


def _embedding_z(vectors: np.ndarray, query: np.ndarray, mean: float, std: float, items: np.ndarray) -> np.ndarray:
    return (_dot(vectors, query, items).astype(np.float64) - mean) / std


def _sparse_lookup(idx: np.ndarray, val: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The values of `items` in a sparse row (indices ascending; absent entries score 0), float32."""
    if len(idx) == 0:
        return np.zeros(len(items), np.float32)
    pos = np.minimum(np.searchsorted(idx, items), len(idx) - 1)
    return np.where(idx[pos] == items, val[pos], 0.0).astype(np.float32)


def _sparse_z(idx: np.ndarray, val: np.ndarray, mean: float, std: float, items: np.ndarray) -> np.ndarray:
    """z-scores of `items` in a sparse row."""
    return (_sparse_lookup(idx, val, items).astype(np.float64) - mean) / std


def _vectors_of(r: Retriever) -> np.ndarray | None:
    if isinstance(r, ALS):
        return r.item_factors
    if isinstance(r, ContentEmbedding):
        return r.item_vectors
    return None


def _top_of_dense(s: np.ndarray, ex: np.ndarray, allowed: BoolArray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    masked = s.copy() if allowed is None else np.where(allowed[: len(s)], s, -np.inf).astype(s.dtype)
    masked[ex] = -np.inf
    n = min(n, len(masked))
    top = np.argpartition(-masked, n - 1)[:n]
    top = top[np.argsort(-masked[top], kind="stable")]
    keep = np.isfinite(masked[top])
    return top[keep].astype(np.int64), masked[top][keep]


def _sparse_scores(r: Retriever, batch: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """The retriever's score rows as (item indices ascending, scores) per batch row: the same
    product `score()` takes, without making it dense. One row (a request) is gathered from
    the item-item matrix directly, a batch through scipy."""
    if isinstance(r, ItemToItem):
        assert r.weights is not None
        m = r.weights
        h = batch.history
        if len(batch) == 1:
            seen = np.unique(h.indices[h.indptr[0]:h.indptr[1]]).astype(np.int64)
            return [_gather(m, seen, np.ones(len(seen), np.float32))]
        out = binarize(h) @ m
    else:
        assert isinstance(r, SessionSequence) and r.transitions is not None
        m = r.transitions
        if len(batch) == 1:
            _, items, weights = r.recent_entries(batch)
            return [_gather(m, items, weights)]
        out = r.recent_weights(batch) @ m
    out = sp.csr_matrix(out, dtype=np.float32)
    out.sum_duplicates()
    out.sort_indices()
    return [(out.indices[out.indptr[i]:out.indptr[i + 1]].astype(np.int64), out.data[out.indptr[i]:out.indptr[i + 1]])
            for i in range(out.shape[0])]


def _gather(m: sp.csr_matrix, items: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum_k weights[k] * m[items[k]] as (indices ascending, values), without scipy's overhead."""
    if len(items) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    starts, ends = m.indptr[items], m.indptr[items + 1]
    idx = np.concatenate([m.indices[a:b] for a, b in zip(starts, ends, strict=True)]).astype(np.int64)
    val = np.concatenate([m.data[a:b] * w for a, b, w in zip(starts, ends, weights, strict=True)])
    if len(idx) == 0:
        return idx, np.empty(0, np.float32)
    unique, inverse = np.unique(idx, return_inverse=True)
    return unique, np.bincount(inverse, weights=val, minlength=len(unique)).astype(np.float32)


def _sparse_rows(rows_: list[tuple[np.ndarray, np.ndarray]], excluded: list[np.ndarray], allowed: BoolArray | None,
                 n: int, n_items: int) -> list[_Row]:
    out = []
    for i, (idx, val) in enumerate(rows_):
        nz = val != 0
        idx, val = idx[nz], val[nz]
        ex = excluded[i]
        inside = _outside(idx, ex)
        v64 = val[inside].astype(np.float64)
        eligible = inside.copy()
        if allowed is not None:
            eligible &= allowed[idx]
        top = np.empty(0, np.int64)
        top_scores = np.empty(0, np.float32)
        if n > 0 and eligible.any():
            e_idx, e_val = idx[eligible], val[eligible]
            k = min(n, len(e_idx))
            pick = np.argpartition(-e_val, k - 1)[:k] if k < len(e_idx) else np.arange(len(e_idx))
            pick = pick[np.argsort(-e_val[pick], kind="stable")]
            top, top_scores = e_idx[pick], e_val[pick]

        out.append(_Row(top, top_scores, partial(_sparse_lookup, idx, val), float(v64.sum()), float((v64 * v64).sum()),
                        n_items - len(ex)))
    return out


def _dense_rows(s: np.ndarray, excluded: list[np.ndarray], allowed: BoolArray | None, n: int,
                n_items: int) -> list[_Row]:
    out = []
    for i in range(len(s)):
        row = s[i]
        ex = excluded[i]
        keep = np.ones(len(row), bool)
        keep[ex] = False
        r64 = row[keep].astype(np.float64)
        top, top_scores = _top_of_dense(row, ex, allowed, n) if n > 0 else (np.empty(0, np.int64), np.empty(0))
        out.append(_Row(top, top_scores, row.__getitem__, float(r64.sum()),
                        float((r64 * r64).sum()), n_items - len(ex)))
    return out


def extend_catalogue(pipeline: TwoStagePipeline, listing_ids: list[str], texts: list[str] | None = None,
                     sellers: np.ndarray | None = None, categories: list[str | None] | None = None) -> np.ndarray:
    """Add listings created after training to a fitted pipeline, without refitting: they get
    a content embedding from their text (stored IDF and projection) and enter the content
    HNSW index; every other retriever sees them as items without interactions (zero ALS
    factors, empty co-occurrence and transition rows), popularity 0, so the cold-start slot
    can offer them. Returns their catalogue indices. Listing ids already in the catalogue are
    skipped."""
    p = pipeline
    catalog: Catalog = p.catalog
    fresh = [str(x) for x in listing_ids if str(x) not in catalog.item_index]
    keep = [k for k, x in enumerate(listing_ids) if str(x) not in catalog.item_index]
    old = catalog.n_items
    if not fresh:
        return np.empty(0, np.int64)
    n = old + len(fresh)
    retrievers: dict[str, Retriever] = p.retrievers
    content = retrievers.get("content")
    if isinstance(content, ContentEmbedding):
        if texts is None:
            raise ValueError("the pipeline has a content retriever: give the new listings' texts")
        new = content.embed([texts[k] for k in keep])
        assert content.item_vectors is not None
        content.item_vectors = np.vstack([content.item_vectors, new]).astype(np.float32)
    for name, r in retrievers.items():
        if isinstance(r, ALS):
            assert r.item_factors is not None
            r.item_factors = np.vstack([r.item_factors, np.zeros((len(fresh), r.item_factors.shape[1]), np.float32)])
        elif isinstance(r, ItemToItem):
            assert r.weights is not None
            r.weights = _grown(r.weights, n)
        elif isinstance(r, SessionSequence):
            assert r.transitions is not None
            r.transitions = _grown(r.transitions, n)
        elif isinstance(r, EASE):
            assert r.weights is not None
            r.weights = np.pad(r.weights, ((0, n - old), (0, n - old)))
        elif not isinstance(r, ContentEmbedding):
            raise NotImplementedError(f"cannot add listings to retriever {name!r} without refitting")
    stage1: LargeStage1 = p._large
    for name in EMBEDDINGS:
        found = retrievers.get(name)
        emb = stage1._embeddings.get(name)
        if found is not None and emb is not None:
            vectors = _vectors_of(found)
            assert vectors is not None
            with stage1._lock:
                emb.extend(vectors, old)
    pop = p.popularity
    pop.overall = np.concatenate([pop.overall, np.zeros(len(fresh), np.float32)])
    pop.by_group = {g: np.concatenate([v, np.zeros(len(fresh), np.float32)]) for g, v in pop.by_group.items()}
    p.item_popularity = np.concatenate([p.item_popularity, np.zeros(len(fresh), np.float32)])
    if p.item_sellers is not None:
        codes = np.full(len(fresh), -1, np.int64) if sellers is None else np.asarray(sellers, np.int64)[keep]
        p.item_sellers = np.concatenate([p.item_sellers, codes])
    p.side.extend(len(fresh), None if categories is None else [categories[k] for k in keep])
    ids = list(catalog.listing_ids) + fresh
    p.catalog = Catalog(  # a new object: caches keyed by the catalogue (the service's mask mapping) refresh
        listing_ids=np.asarray(ids, dtype=object), user_ids=catalog.user_ids,
        item_index=catalog.item_index | {lid: old + k for k, lid in enumerate(fresh)},
        user_index=catalog.user_index)
    return np.arange(old, n, dtype=np.int64)


def _grown(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    m = m.tocsr()
    indptr = np.concatenate([m.indptr, np.full(n - m.shape[0], m.indptr[-1], m.indptr.dtype)])
    return sp.csr_matrix((m.data, m.indices, indptr), shape=(n, n))
