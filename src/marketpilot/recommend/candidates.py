"""Stage 1 output for a batch of users: the union of each retriever's top items, with the
per-retriever features the ranker reads.

Scores of different retrievers live on different scales (an EASE weight, a walk probability,
a dot product), and the scale of one retriever moves when it is refitted on more data. The
ranker therefore also sees scale-free views of each score: its rank among the eligible items
and its z-score within the user's row, which keep their meaning between the validation fit
and the final fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

RANK_CAP_FACTOR = 2  # an item outside a retriever's top n gets rank n * factor


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """Candidate pairs of a batch: `rows` (position in the batch), `items`, and features
    (n_pairs, n_features) in the order of `names`. Pairs are grouped by row, rows ascending."""

    rows: np.ndarray
    items: np.ndarray
    features: np.ndarray
    names: tuple[str, ...]
    # per batch row: 0 = has history, 1 = no history but a user the model knows, 2 = neither,
    # 3 = history but not a user the model knows (an anonymous session)
    coldness: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))

    def __len__(self) -> int:
        return len(self.rows)

    def group_sizes(self, n_rows: int) -> np.ndarray:
        return np.bincount(self.rows, minlength=n_rows)


def retrieve(
    scores: Mapping[str, np.ndarray],
    eligible: np.ndarray,
    depth: Mapping[str, int],
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Union of each retriever's top `depth[name]` eligible items per row.

    `scores[name]` is (batch, n_items); `eligible` a (batch, n_items) bool mask. Returns
    (rows, items, {name: rank of each pair within that retriever, capped}).
    """
    batch, n_items = eligible.shape
    chosen = np.zeros((batch, n_items), bool)
    rank_mats: dict[str, np.ndarray] = {}
    for name, s in scores.items():
        n = min(depth.get(name, 0), n_items)
        if n <= 0:
            continue
        masked = np.where(eligible, s, -np.inf)
        top = np.argpartition(-masked, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(masked, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        ranks = np.full((batch, n_items), n * RANK_CAP_FACTOR, np.float32)
        np.put_along_axis(ranks, top, np.arange(n, dtype=np.float32)[None, :].repeat(batch, 0), axis=1)
        finite = np.isfinite(np.take_along_axis(masked, top, axis=1))
        rows_idx = np.repeat(np.arange(batch), n).reshape(batch, n)
        chosen[rows_idx[finite], top[finite]] = True
        rank_mats[name] = ranks
    chosen &= eligible
    rows, items = np.nonzero(chosen)
    return rows, items, {name: r[rows, items] for name, r in rank_mats.items()}


def score_features(
    scores: Mapping[str, np.ndarray], eligible: np.ndarray, rows: np.ndarray, items: np.ndarray,
    ranks: Mapping[str, np.ndarray],
) -> tuple[list[np.ndarray], list[str]]:
    """Per retriever: raw score, z-score within the row's eligible items, score over the row's
    top eligible score, log rank. The raw score is kept for the pipeline's own use (cold-start
    fallbacks) but is not a ranker feature, since its scale moves with the training-set size."""
    cols: list[np.ndarray] = []
    names: list[str] = []
    count = np.maximum(eligible.sum(axis=1), 1)
    for name, s in scores.items():
        s64 = np.where(eligible, s, 0.0).astype(np.float64)
        mean = s64.sum(axis=1) / count
        var = np.maximum((np.where(eligible, s64 * s64, 0.0)).sum(axis=1) / count - mean**2, 0.0)
        std = np.sqrt(var) + 1e-9
        raw = s[rows, items].astype(np.float64)
        top = np.where(eligible, s, -np.inf).max(axis=1).astype(np.float64) if s.shape[1] else np.zeros(len(s))
        top = np.where(np.isfinite(top) & (np.abs(top) > 1e-12), np.abs(top), 1.0)
        cols += [raw, (raw - mean[rows]) / std[rows], raw / top[rows]]
        names += [f"{name}_score", f"{name}_z", f"{name}_rel"]
        if name in ranks:
            cols.append(np.log1p(ranks[name]).astype(np.float64))
            names.append(f"{name}_lrank")
    return cols, names
