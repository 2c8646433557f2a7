"""Interactions as the arrays every retriever trains on: a weighted user x item matrix.

Ids become dense indices once, here, through a :class:`~marketpilot.recommend.model.Catalog`,
so that everything downstream works on numpy/scipy arrays. One user-item pair is one cell:
its weight is the strongest signal the user gave the item (a purchase says more than a view),
and repeated events do not pile up, because ten views of one listing are not ten times the
evidence of one purchase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from marketpilot.recommend.model import Catalog

# How much one event of each type says about a user's interest, relative to a view. A rating
# is an explicit statement of having used the item, so it counts like a purchase.
EVENT_WEIGHTS: Mapping[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "rating": 8.0,
}


@dataclass(frozen=True, eq=False)
class Interactions:
    """Interaction events as index arrays (one row per event) over a fixed catalogue.

    `users`, `items` are catalogue indices, `weights` the event weight, `times` Unix seconds
    (int64). Rows are in the order given; `matrix()` collapses them to one cell per pair.
    """

    catalog: Catalog
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    times: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.users)
        if not (len(self.items) == len(self.weights) == len(self.times) == n):
            raise ValueError("interactions: users, items, weights and times must have the same length")

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        catalog: Catalog | None = None,
        *,
        event_weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> Interactions:
        """From an import-schema interactions frame (user_id, listing_id, event, timestamp).

        Without `catalog` one is built from the frame (ids sorted, so the same data always gets
        the same indices). With one, rows whose user or listing it does not know are dropped.
        """
        missing = {"user_id", "listing_id", "event", "timestamp"} - set(frame.columns)
        if missing:
            raise ValueError(f"interactions: missing columns {sorted(missing)}")
        user_ids = frame["user_id"].astype(str).to_numpy()
        item_ids = frame["listing_id"].astype(str).to_numpy()
        if catalog is None:
            catalog = Catalog.build(sorted(set(item_ids)), sorted(set(user_ids)))
        users = np.fromiter((catalog.user_index.get(u, -1) for u in user_ids), np.int64, len(user_ids))
        items = np.fromiter((catalog.item_index.get(i, -1) for i in item_ids), np.int64, len(item_ids))
        events = frame["event"].astype(str).to_numpy()
        unknown = set(np.unique(events)) - set(event_weights)
        if unknown:
            raise ValueError(f"interactions: unknown event types {sorted(unknown)}; known: {sorted(event_weights)}")
        weights = np.zeros(len(events), np.float32)
        for event, weight in event_weights.items():
            weights[events == event] = weight
        times = _unix_seconds(frame["timestamp"])
        keep = (users >= 0) & (items >= 0)
        return cls(catalog, users[keep], items[keep], weights[keep], times[keep])

    def take(self, rows: np.ndarray) -> Interactions:
        """The same catalogue, only the given rows (a boolean mask or indices)."""
        return Interactions(self.catalog, self.users[rows], self.items[rows], self.weights[rows], self.times[rows])

    def matrix(self, *, binary: bool = False) -> sp.csr_matrix:
        """(n_users, n_items) float32 CSR; a cell holds the pair's strongest event weight
        (1.0 for every pair when `binary`)."""
        shape = (self.catalog.n_users, self.catalog.n_items)
        if len(self) == 0:
            return sp.csr_matrix(shape, dtype=np.float32)
        key = self.users * self.catalog.n_items + self.items
        order = np.lexsort((-self.weights, key))
        first = np.ones(len(order), bool)
        first[1:] = key[order][1:] != key[order][:-1]
        rows = order[first]
        values = np.ones(len(rows), np.float32) if binary else self.weights[rows].astype(np.float32)
        return sp.csr_matrix((values, (self.users[rows], self.items[rows])), shape=shape, dtype=np.float32)

    def timelines(self) -> tuple[np.ndarray, np.ndarray]:
        """Every user's distinct items in time order of their latest interaction, users
        ascending, as two flat arrays (user, item): `histories()` without a list per user."""
        order = np.lexsort((self.times, self.users))
        users, items = self.users[order], self.items[order]
        key = users * self.catalog.n_items + items
        _, first_from_end = np.unique(key[::-1], return_index=True)
        last = np.sort(len(key) - 1 - first_from_end)  # each pair's LAST occurrence, in order
        return users[last].astype(np.int64), items[last].astype(np.int64)

    def histories(self) -> list[np.ndarray]:
        """Per user, the distinct items in time order of their latest interaction (most recent last)."""
        users, items = self.timelines()
        bounds = np.searchsorted(users, np.arange(self.catalog.n_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.catalog.n_users)]

    def timeline_pairs(self, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(earlier item, later item, steps apart) for every two items at most `window` steps
        apart in one user's timeline (`timelines()`)."""
        users, items = self.timelines()
        earlier, later, steps = [], [], []
        for step in range(1, window + 1):
            same = users[step:] == users[:-step]  # both ends in one user's history
            earlier.append(items[:-step][same])
            later.append(items[step:][same])
            steps.append(np.full(int(same.sum()), step, np.int64))
        if not earlier:
            empty = np.empty(0, np.int64)
            return empty, empty, empty
        return np.concatenate(earlier), np.concatenate(later), np.concatenate(steps)


def _unix_seconds(values: pd.Series | Sequence[object]) -> np.ndarray:
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is None:
            series = series.dt.tz_localize("UTC")
        return (series.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64") // 10**9).to_numpy(np.int64)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(np.int64)
    parsed = pd.to_datetime(series, utc=True, format="mixed")
    return (parsed.astype("datetime64[ns, UTC]").astype("int64") // 10**9).to_numpy(np.int64)
