"""The deterministic ranking served when the trained recommender cannot be trusted or is late.

Score of listing ``i`` for a request from region ``r`` (``r`` unknown: the global counts):

    popularity_r(i) = sum over interactions with i in the last `window_days` by users of r,
                      weighted view 1, click 3, add_to_cart 5, purchase 10, rating 2
    score(i)        = log1p(regional_weight * popularity_r(i) + (1 - regional_weight) * popularity(i))
                      + freshness_weight * exp(-age_days(i) / freshness_days)
                      + session_weight * share of the request history in i's category

Ties break on the listing universe index (listings loaded in id order, later ones appended
in arrival order), so the same state always yields the same slate. The freshness term is
what lets a brand-new listing with no interactions surface; the session term is what an
anonymous first visit can personalise on. `similar(i)` ranks listings of i's category the
same way (no session term).

Counts are read from the database at :meth:`PopularityFallback.reload` (start-up, then as
often as the operator calls it); request-time work is a walk down a presorted order (no
history) or one vector pass over the catalogue (with history).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, select

from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.recommend.availability import ListingUniverse
from marketpilot.recommend.model import BoolArray, Candidates, Catalog, FloatArray, Query

FALLBACK_NAME = "popularity-freshness"
FALLBACK_VERSION = "1"


@dataclass(frozen=True, slots=True)
class FallbackConfig:
    window_days: float = 30.0
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "click": 3.0, "add_to_cart": 5.0, "purchase": 10.0, "rating": 2.0}
    )
    regional_weight: float = 0.8
    freshness_weight: float = 1.0
    freshness_days: float = 7.0
    session_weight: float = 2.0
    rescore_seconds: float = 60.0


_GLOBAL = ""


class PopularityFallback:
    """Regional popularity with freshness over the availability universe (a `Recommender`)."""

    name = FALLBACK_NAME
    version = FALLBACK_VERSION

    def __init__(
        self,
        db: Database,
        universe: Callable[[], ListingUniverse],
        config: FallbackConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self._universe = universe
        self.config = config or FallbackConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._popularity: dict[str, np.ndarray] = {}
        self._scored: dict[str, tuple[float, int, FloatArray, np.ndarray]] = {}
        self._catalog: tuple[int, Catalog] | None = None
        self._loaded_for: ListingUniverse | None = None

    # -- counts ----------------------------------------------------------------------

    def reload(self) -> None:
        """Read the popularity counts of the window from the database."""
        u = self._universe()
        cfg = self.config
        since = datetime.now(UTC) - timedelta(days=cfg.window_days)
        counts: dict[str, np.ndarray] = {_GLOBAL: np.zeros(u.n, dtype=np.float64)}
        with self.db.read() as s:
            rows = s.execute(
                select(t.Interaction.listing_id, t.User.region, t.Interaction.event, func.count())
                .outerjoin(t.User, t.User.id == t.Interaction.user_id)
                .where(t.Interaction.timestamp >= since)
                .group_by(t.Interaction.listing_id, t.User.region, t.Interaction.event)
            )
            for lid, region, event, n in rows:
                i = u.index.get(lid)
                if i is None or i >= u.n:
                    continue
                w = cfg.event_weights.get(event, 0.0) * int(n)
                counts[_GLOBAL][i] += w
                if region:
                    arr = counts.get(region)
                    if arr is None:
                        arr = counts[region] = np.zeros(u.n, dtype=np.float64)
                    arr[i] += w
        with self._lock:
            self._popularity = counts
            self._scored.clear()
            self._loaded_for = u

    def _base(self, region: str | None, u: ListingUniverse) -> tuple[FloatArray, np.ndarray]:
        """(score per universe index, indices best first) for a region, recomputed when the
        universe grew or `rescore_seconds` passed (freshness moves with the clock)."""
        if self._loaded_for is not u:
            self.reload()
        key = region if region in self._popularity else _GLOBAL
        now = self._clock()
        n, arrays = u.snapshot()
        cached = self._scored.get(key)
        if cached is not None and cached[1] == n and now - cached[0] < self.config.rescore_seconds:
            return cached[2], cached[3]
        cfg = self.config
        glob = self._popularity[_GLOBAL]
        pop = np.zeros(n, dtype=np.float64)
        m = min(n, len(glob))
        if key == _GLOBAL:
            pop[:m] = glob[:m]
        else:
            pop[:m] = cfg.regional_weight * self._popularity[key][:m] + (1 - cfg.regional_weight) * glob[:m]
        age_days = np.maximum(now - arrays["created"][:n], 0.0) / 86400.0
        score = (np.log1p(pop) + cfg.freshness_weight * np.exp(-age_days / cfg.freshness_days)).astype(np.float32)
        order = np.argsort(-score, kind="stable")
        with self._lock:
            self._scored[key] = (now, n, score, order)
        return score, order

    # -- Recommender ---------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The universe as a `Catalog` (built on demand; the service works on universe
        indices directly and never needs it on the request path)."""
        u = self._universe()
        cached = self._catalog
        if cached is None or cached[0] != u.n:
            cached = (u.n, Catalog.build(list(u.ids[: u.n]), []))
            self._catalog = cached
        return cached[1]

    def recommend(self, query: Query, allowed: BoolArray | None = None) -> Candidates:
        u = self._universe()
        score, order = self._base(query.region, u)
        n = len(score)
        ok = np.ones(n, dtype=np.bool_) if allowed is None else _fit(allowed, n).copy()
        history = query.history[(query.history >= 0) & (query.history < n)]
        ok[history] = False
        if 0 <= query.seed_item < n:
            ok[query.seed_item] = False
        if len(history) and self.config.session_weight > 0:
            codes = u.snapshot()[1]["category"][:n]
            share = np.bincount(codes[history], minlength=len(u.categories)) / len(history)
            boosted = score + np.float32(self.config.session_weight) * share[codes].astype(np.float32)
            return _top(boosted, ok, query.k)
        return _walk(score, order, ok, query.k)

    def similar(self, item: int, k: int, allowed: BoolArray | None = None) -> Candidates:
        u = self._universe()
        score, order = self._base(None, u)
        n = len(score)
        codes = u.snapshot()[1]["category"][:n]
        ok = codes == codes[item]
        if allowed is not None:
            ok &= _fit(allowed, n)
        ok[item] = False
        return _walk(score, order, ok, k)


def _fit(mask: BoolArray, n: int) -> BoolArray:
    if len(mask) == n:
        return mask
    if len(mask) > n:
        return mask[:n]
    return np.concatenate([mask, np.zeros(n - len(mask), dtype=np.bool_)])


def _walk(score: FloatArray, order: np.ndarray, ok: BoolArray, k: int) -> Candidates:
    """The first k allowed items of a presorted order, reading it in growing chunks."""
    picked: list[np.ndarray] = []
    got = 0
    start, chunk = 0, max(4 * k, 256)
    while got < k and start < len(order):
        block = order[start : start + chunk]
        keep = block[ok[block]]
        picked.append(keep)
        got += len(keep)
        start += chunk
        chunk *= 4
    items = np.concatenate(picked)[:k].astype(np.int64) if picked else np.empty(0, dtype=np.int64)
    return Candidates(items, score[items].astype(np.float32))


def _top(score: FloatArray, ok: BoolArray, k: int) -> Candidates:
    """Top k of `score` over allowed items; ties by index (lower first)."""
    masked = np.where(ok, score, -np.inf).astype(np.float32)
    n_ok = int(np.count_nonzero(ok))
    k = min(k, n_ok)
    if k == 0:
        return Candidates(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
    part = np.argpartition(-masked, k - 1)[:k] if k < len(masked) else np.arange(len(masked))
    # Stable order: by score descending, then index ascending.
    part = part[np.lexsort((part, -masked[part]))]
    # argpartition may cut a tie at the boundary arbitrarily: take every item tied with the
    # k-th score and keep the lowest indices, so the slate is deterministic.
    kth = masked[part[-1]]
    if math.isfinite(float(kth)):
        above = part[masked[part] > kth]
        tied = np.flatnonzero(masked == kth)
        part = np.concatenate([above, tied[: k - len(above)]])
    return Candidates(part.astype(np.int64), masked[part].astype(np.float32))
