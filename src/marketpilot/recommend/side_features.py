"""Ranker features from the import schema's side information and interaction times.

All scale-free or in days, all computable at serving time from what the fitted pipeline
stores plus the request's history (no per-request work over the whole catalogue):

- ``cat{L}_aff`` (L = 1, 2, 3): the share of the user's history whose listing `category_path`
  has the same first L segments as the candidate's (NaN without categories).
- ``seg_share``: the share of the users of the requester's `segment` (users table) who have
  interacted with the candidate; ``seg_lift``: its log ratio to the share of all users (NaN for
  users without a segment, e.g. anonymous sessions).
- ``time_med_gap``: the candidate's median interaction time minus the mean of the history
  listings' median interaction times, in days; ``time_first_gap``: the candidate's first
  interaction time minus that same mean (NaN for listings nobody has interacted with).

Chosen on a validation split of MovieLens-100K's training part (see docs/recommendations.md,
"Evaluation"); defined from the import schema's columns, not from any data set's.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions

CATEGORY_LEVELS = 3
# (user, category) pair counts go into a dense table up to this many cells, sorted keys above
DENSE_COUNTS = 1 << 20
NAMES = tuple(f"cat{level}_aff" for level in range(1, CATEGORY_LEVELS + 1)) + (
    "seg_share", "seg_lift", "time_med_gap", "time_first_gap")
DAY = 86_400.0


def category_codes(paths: list[str | None] | None, levels: int = CATEGORY_LEVELS) -> np.ndarray | None:
    """(levels, n_items) int64: code of each listing's `category_path` prefix of 1..levels
    segments (-1: no category); None without categories."""
    return None if paths is None else encode_categories(paths, [{} for _ in range(levels)])


def pair_counts(have_rows: np.ndarray, have_codes: np.ndarray, want_rows: np.ndarray, want_codes: np.ndarray,
                n_rows: int, width: int) -> np.ndarray:
    """For each wanted (row, code) pair, how many times `have` holds it (codes in 0..width-1):
    a user's history items per category or per seller, looked up for candidate pairs. Counted
    into a dense table when it is small (a request), through sorted keys otherwise."""
    have = have_rows * width + have_codes
    wanted = want_rows * width + want_codes
    if n_rows * width <= DENSE_COUNTS:
        return np.bincount(have, minlength=n_rows * width)[wanted]
    keys, counts = np.unique(have, return_counts=True)
    if len(keys) == 0:
        return np.zeros(len(wanted), np.int64)
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[pos] == wanted, counts[pos], 0)


def _prefix(path: str | None, level: int) -> str | None:
    parts = [p for p in str(path).split("/") if p] if path else []
    return "/".join(parts[: level + 1]) if parts else None  # a shorter path is its own deepest prefix


def encode_categories(paths: list[str | None], vocab: list[dict[str, int]]) -> np.ndarray:
    """Codes of `paths` per level (-1: no category), taking a prefix's code from `vocab` and
    giving a prefix it has not seen the next code (added to `vocab`)."""
    out = np.full((len(vocab), len(paths)), -1, np.int64)
    for level, seen in enumerate(vocab):
        for i, path in enumerate(paths):
            key = _prefix(path, level)
            if key is not None:
                out[level, i] = seen.setdefault(key, len(seen))
    return out


def segment_codes(segments: list[str | None] | None) -> tuple[np.ndarray | None, list[str]]:
    if segments is None:
        return None, []
    names = sorted({s for s in segments if s})
    code = {s: k for k, s in enumerate(names)}
    return np.array([code.get(s, -1) if s else -1 for s in segments], np.int64), names


class SideFeatures:
    """Fitted per stage-1 fit (counts and times come from the interactions it is fitted on);
    the category and segment codes are the catalogue's and do not change."""

    def __init__(self, categories: np.ndarray | None = None, user_segments: np.ndarray | None = None,
                 category_vocab: list[dict[str, int]] | None = None) -> None:
        self.categories = categories  # (levels, n_items) int64 or None
        # per level, category-path prefix -> code: listings added after the fit get the codes
        # their categories had in training (None: a bundle saved before the vocabulary was kept)
        self.category_vocab = category_vocab
        self.user_segments = user_segments  # (n_users,) int64 or None
        self.segment_share = np.zeros((0, 0), np.float32)  # (n_segments, n_items)
        self.overall_share = np.zeros(0, np.float32)
        self.item_median_day = np.zeros(0, np.float64)  # NaN: no interactions
        self.item_first_day = np.zeros(0, np.float64)
        self._median_filled = np.zeros(0, np.float64)  # per-request helpers, built once
        self._median_known = np.zeros(0, np.float64)
        self._n_codes = np.ones(0, np.int64)

    def fit(self, data: Interactions) -> Self:
        n_users, n_items = data.catalog.n_users, data.catalog.n_items
        x = data.matrix(binary=True)
        active = np.diff(x.indptr) > 0
        self.overall_share = (np.asarray(x.sum(axis=0)).ravel() / max(int(active.sum()), 1)).astype(np.float32)
        if self.user_segments is not None and self.user_segments.max(initial=-1) >= 0:
            seg = self.user_segments[:n_users]
            ok = (seg >= 0) & active[: len(seg)]
            n_seg = int(self.user_segments.max()) + 1
            to_seg = sp.csr_matrix((np.ones(int(ok.sum())), (seg[ok], np.flatnonzero(ok))), shape=(n_seg, n_users))
            counts = np.asarray((to_seg @ x).todense(), np.float64)
            members = np.bincount(seg[ok], minlength=n_seg).astype(np.float64)
            self.segment_share = (counts / np.maximum(members, 1.0)[:, None]).astype(np.float32)
        days = data.times.astype(np.float64) / DAY
        self.item_median_day = np.full(n_items, np.nan)
        self.item_first_day = np.full(n_items, np.nan)
        if len(days):
            order = np.lexsort((days, data.items))
            items, d = data.items[order], days[order]
            starts = np.searchsorted(items, np.arange(n_items), side="left")
            ends = np.searchsorted(items, np.arange(n_items), side="right")
            has = ends > starts
            self.item_first_day[has] = d[starts[has]]
            lo, hi = starts[has], ends[has] - 1
            self.item_median_day[has] = 0.5 * (d[lo + (hi - lo) // 2] + d[lo + (hi - lo + 1) // 2])
        self._prepare()
        return self

    @classmethod
    def for_catalogue(cls, paths: list[str | None] | None, user_segments: np.ndarray | None) -> SideFeatures:
        if paths is None:
            return cls(None, user_segments)
        vocab: list[dict[str, int]] = [{} for _ in range(CATEGORY_LEVELS)]
        return cls(encode_categories(paths, vocab), user_segments, vocab)

    def extend(self, n_new: int, paths: list[str | None] | None = None) -> None:
        """Listings added to the catalogue after the fit: their categories coded as in training
        (so category affinity is computed for them as for a trained listing nobody has
        interacted with yet), no interactions (shares 0, times NaN)."""
        if self.categories is not None and self.categories.shape[1] == len(self.overall_share):
            if paths is not None and self.category_vocab is not None:
                if len(paths) != n_new:
                    raise ValueError(f"{n_new} new listings but {len(paths)} category paths")
                new = encode_categories(list(paths), self.category_vocab)
            else:
                new = np.full((self.categories.shape[0], n_new), -1, np.int64)
            self.categories = np.hstack([self.categories, new])
        self.overall_share = np.concatenate([self.overall_share, np.zeros(n_new, np.float32)])
        if self.segment_share.size:
            self.segment_share = np.hstack([self.segment_share, np.zeros((self.segment_share.shape[0], n_new),
                                                                         np.float32)])
        self.item_median_day = np.concatenate([self.item_median_day, np.full(n_new, np.nan)])
        self.item_first_day = np.concatenate([self.item_first_day, np.full(n_new, np.nan)])
        self._prepare()

    def _prepare(self) -> None:
        self._median_filled = np.nan_to_num(self.item_median_day, nan=0.0)
        self._median_known = (~np.isnan(self.item_median_day)).astype(np.float64)
        if self.categories is not None:
            self._n_codes = np.maximum(self.categories.max(axis=1, initial=-1) + 1, 1)

    def features(self, users: np.ndarray, history: sp.csr_matrix, rows: np.ndarray,
                 items: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
        """Columns (in `NAMES` order) for candidate pairs (rows index `users`/`history`)."""
        n = len(rows)
        cols: list[np.ndarray] = []
        if len(self._median_filled) != len(self.item_median_day):
            self._prepare()
        h = history.tocsr()
        n_rows = h.shape[0]
        stored = h.data != 0
        hist_row = np.repeat(np.arange(n_rows), np.diff(h.indptr))[stored]
        hist_item = h.indices[stored].astype(np.int64)
        total = np.maximum(np.bincount(hist_row, minlength=n_rows), 1).astype(np.float64)
        known_items = len(self.overall_share)
        # listings added after the fit (longer catalogue) are unknown to every array here
        inside = items < known_items
        known = hist_item < known_items
        kr, ki = hist_row[known], hist_item[known]
        if self.categories is not None and self.categories.shape[1] == known_items:
            for level in range(self.categories.shape[0]):
                width = int(self._n_codes[level])
                hc = self.categories[level, ki]
                ok_h = hc >= 0
                code = np.full(n, -1, np.int64)
                code[inside] = self.categories[level, items[inside]]
                ok = code >= 0
                out = np.full(n, np.nan)
                out[ok] = pair_counts(kr[ok_h], hc[ok_h], rows[ok], code[ok], n_rows, width) / total[rows[ok]]
                cols.append(out)
        else:
            cols += [np.full(n, np.nan)] * CATEGORY_LEVELS
        share = np.full(n, np.nan)
        lift = np.full(n, np.nan)
        if self.user_segments is not None and self.segment_share.size:
            u = users[rows]
            seg = np.full(n, -1, np.int64)
            valid = (u >= 0) & (u < len(self.user_segments))
            seg[valid] = self.user_segments[u[valid]]
            ok = (seg >= 0) & inside
            share[ok] = self.segment_share[seg[ok], items[ok]]
            lift[ok] = np.log((share[ok] + 1e-3) / (self.overall_share[items[ok]] + 1e-3))
        cols += [share, lift]
        med = np.full(n, np.nan)
        first = np.full(n, np.nan)
        med[inside] = self.item_median_day[items[inside]]
        first[inside] = self.item_first_day[items[inside]]
        denom = np.bincount(kr, weights=self._median_known[ki], minlength=n_rows)
        centre = np.where(denom > 0, np.bincount(kr, weights=self._median_filled[ki], minlength=n_rows)
                          / np.maximum(denom, 1.0), np.nan)
        cols += [med - centre[rows], first - centre[rows]]
        return cols, list(NAMES)

    # -- persistence --------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"segment_share": self.segment_share, "overall_share": self.overall_share,
               "item_median_day": self.item_median_day, "item_first_day": self.item_first_day}
        if self.categories is not None:
            out["categories"] = self.categories
        for level, seen in enumerate(self.category_vocab or ()):
            keys = sorted(seen, key=seen.__getitem__)
            out[f"category_keys_{level}"] = np.array(keys, dtype=str) if keys else np.zeros(0, dtype="<U1")
        if self.user_segments is not None:
            out["user_segments"] = self.user_segments
        return out

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> SideFeatures:
        vocab = None
        if "category_keys_0" in arrays:
            vocab = [{str(k): code for code, k in enumerate(arrays[f"category_keys_{level}"].tolist())}
                     for level in range(CATEGORY_LEVELS) if f"category_keys_{level}" in arrays]
        out = cls(arrays.get("categories"), arrays.get("user_segments"), vocab)
        out.segment_share = arrays["segment_share"]
        out.overall_share = arrays["overall_share"]
        out.item_median_day = arrays["item_median_day"]
        out.item_first_day = arrays["item_first_day"]
        out._prepare()
        return out
