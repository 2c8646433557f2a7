"""Top-k ranking metrics with binary relevance, as Microsoft Recommenders computes them.

For each user with at least one relevant (test) item: NDCG@k with a log2 discount and the
ideal DCG over min(|relevant|, k) hits; precision@k = hits / k; recall@k = hits / |relevant|;
MAP@k = sum of precision at each hit / min(|relevant|, k). Means are over those users.
Catalogue coverage is the share of catalogue items that appear in anybody's top k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, slots=True)
class RankingMetrics:
    k: int
    ndcg: float
    precision: float
    recall: float
    map: float
    coverage: float
    users: int

    def to_dict(self) -> dict[str, float]:
        k = self.k
        return {f"ndcg@{k}": self.ndcg, f"precision@{k}": self.precision, f"recall@{k}": self.recall,
                f"map@{k}": self.map, "coverage": self.coverage}


def ranking_metrics(top: np.ndarray, relevant: sp.csr_matrix, k: int) -> RankingMetrics:
    """`top` (n_users, >= k) item indices best first (-1 = no item); `relevant` (n_users,
    n_items) with a stored non-zero for each relevant pair."""
    hits, n_rel, top = _hits(top, relevant, k)
    ideal_n = np.minimum(n_rel, k)
    n_hits = hits.sum(axis=1)
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, top.shape[1] + 1)
    ap = (precision_at * hits).sum(axis=1) / ideal_n
    shown = np.unique(top[top >= 0])
    return RankingMetrics(
        k=k,
        ndcg=float(np.mean(_ndcg(hits, ideal_n))),
        precision=float(np.mean(n_hits / k)),
        recall=float(np.mean(n_hits / n_rel)),
        map=float(np.mean(ap)),
        coverage=float(len(shown) / relevant.shape[1]),
        users=int(len(n_rel)),
    )


def user_ndcg(top: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """NDCG@k of each user with a relevant item, users ascending (`ranking_metrics().ndcg` is
    their mean): for paired comparisons of two rankings of the same users."""
    hits, n_rel, _ = _hits(top, relevant, k)
    return _ndcg(hits, np.minimum(n_rel, k))


def paired_lead(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of a - b over the same users and its standard error (per-user differences, n - 1
    degrees of freedom): how far one ranking is ahead of another on this sample of users."""
    if a.shape != b.shape:
        raise ValueError(f"paired_lead: {a.shape} and {b.shape} are not the same users")
    diff = a - b
    return float(diff.mean()), standard_error(diff)


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of per-user values (n - 1 degrees of freedom)."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def _hits(top: np.ndarray, relevant: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hits (users with a relevant item x k) bool, their relevant counts, `top` cut to k)."""
    if top.shape[0] != relevant.shape[0]:
        raise ValueError(f"metrics: {top.shape[0]} ranked rows for {relevant.shape[0]} users")
    top = top[:, :k]
    rel = relevant.tocsr()
    n_rel = np.diff(rel.indptr)
    users = np.flatnonzero(n_rel > 0)
    if len(users) == 0:
        raise ValueError("metrics: no user has a relevant item")
    hits = np.zeros((len(users), top.shape[1]), bool)
    for row, u in enumerate(users):
        truth = rel.indices[rel.indptr[u]:rel.indptr[u + 1]]
        hits[row] = np.isin(top[u], truth) & (top[u] >= 0)
    return hits, n_rel[users], top


def _ndcg(hits: np.ndarray, ideal_n: np.ndarray) -> np.ndarray:
    discount = 1.0 / np.log2(np.arange(hits.shape[1]) + 2.0)
    return (hits * discount).sum(axis=1) / np.cumsum(discount)[ideal_n - 1]


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Per row, the k best item indices best first; `exclude` cells and -inf scores never
    appear (-1 pads a row with fewer than k eligible items)."""
    s = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None:
        ex = exclude.tocoo()
        s[ex.row, ex.col] = -np.inf
    k_eff = min(k, s.shape[1])
    part = np.argpartition(-s, k_eff - 1, axis=1)[:, :k_eff]
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top[~np.isfinite(np.take_along_axis(s, top, axis=1))] = -1
    if k_eff < k:
        top = np.hstack([top, np.full((s.shape[0], k - k_eff), -1)])
    return top
