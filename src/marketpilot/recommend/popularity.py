"""Popular, trending and fresh items overall and per group (region, segment): the retriever
for users we know nothing about, a ranker feature, and a baseline.

Popularity is a time-decayed count of distinct users: each interaction contributes
`weight * 0.5 ** (age / half_life)`, age measured from the newest interaction in the data (so
the same data always gives the same scores, whatever the wall clock says). With
`half_life_days=None` it is a plain count, which is what the offline `popular` baseline uses.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from marketpilot.recommend.interactions import Interactions

DAY = 86_400.0


class Popularity:
    """Per-item popularity overall and within each group of users."""

    name = "popular"

    def __init__(self, half_life_days: float | None = 7.0) -> None:
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError(f"popularity: half_life_days must be positive or None, got {half_life_days}")
        self.half_life_days = half_life_days
        self.overall: np.ndarray = np.zeros(0, np.float32)
        self.by_group: dict[str, np.ndarray] = {}

    def fit(self, data: Interactions, user_groups: Mapping[str, np.ndarray] | None = None) -> Popularity:
        """`user_groups` maps a group name (e.g. ``"region:FR"``) to the catalogue indices of its users."""
        n = data.catalog.n_items
        weight = self._decay(data)
        # one contribution per (user, item): the strongest, so a user who views an item ten
        # times does not outvote ten users
        key = data.users * n + data.items
        order = np.lexsort((-weight, key))
        first = np.ones(len(order), bool)
        first[1:] = key[order][1:] != key[order][:-1]
        rows = order[first]
        self.overall = np.bincount(data.items[rows], weights=weight[rows], minlength=n).astype(np.float32)
        self.by_group = {}
        for group, members in (user_groups or {}).items():
            mask = np.zeros(data.catalog.n_users, bool)
            mask[members] = True
            sel = rows[mask[data.users[rows]]]
            self.by_group[group] = np.bincount(data.items[sel], weights=weight[sel], minlength=n).astype(np.float32)
        return self

    def _decay(self, data: Interactions) -> np.ndarray:
        if self.half_life_days is None or len(data) == 0:
            return np.ones(len(data), np.float64)
        age = (data.times.max() - data.times).astype(np.float64) / DAY
        return 0.5 ** (age / self.half_life_days)

    def scores(self, groups: list[str] | tuple[str, ...] = ()) -> np.ndarray:
        """Overall popularity, blended with each known group's (normalised, equal parts)."""
        total = self.overall / max(float(self.overall.max(initial=0.0)), 1e-9)
        parts = [self.by_group[g] for g in groups if g in self.by_group]
        if not parts:
            return total.astype(np.float32)
        out = total * 0.2
        for p in parts:
            out = out + 0.8 / len(parts) * p / max(float(p.max(initial=0.0)), 1e-9)
        return out.astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        names = sorted(self.by_group)
        out = {"overall": self.overall}
        if names:
            out["groups"] = np.stack([self.by_group[g] for g in names])
        return out

    def group_names(self) -> list[str]:
        return sorted(self.by_group)

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], half_life_days: float | None, names: list[str]) -> Popularity:
        out = cls(half_life_days)
        out.overall = arrays["overall"]
        if names:
            out.by_group = {g: arrays["groups"][k] for k, g in enumerate(names)}
        return out
