"""The contract between a trained recommender and the online service that serves it.

Items and users are dense indices into the model's `Catalog` so the hot path works on numpy
arrays; ids (strings) are translated only at the edges. A model never decides availability:
the service passes `allowed`, a boolean mask over item indices (sold out, locked, delisted,
suppressed items are False), and the model must never return an item whose mask is False.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


class Candidates(NamedTuple):
    """Top items, best first: `items` are catalogue indices, `scores` the same length."""

    items: IntArray
    scores: FloatArray


@dataclass(frozen=True, slots=True)
class Query:
    """One recommendation request as the model sees it.

    `user` is the user's index in the catalogue, or -1 for an unknown user / anonymous session.
    `history` holds the item indices the user or session interacted with, most recent LAST.
    Context fields are None when the caller did not send them. `pool` of the `k` asked for are
    not the slate but candidates the caller re-ranks itself (the slate policy's fairness and
    exploration pool): a model may fill them with exploration candidates, such as listings
    nobody has interacted with yet.
    """

    k: int
    user: int = -1
    history: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    region: str | None = None
    device: str | None = None
    page: str | None = None
    hour: int | None = None
    seed_item: int = -1
    pool: int = 0


@dataclass(slots=True)
class Catalog:
    """Listing and user ids with the item attributes every stage needs, as arrays by index."""

    listing_ids: npt.NDArray[np.object_]
    user_ids: npt.NDArray[np.object_]
    item_index: dict[str, int]
    user_index: dict[str, int]

    @classmethod
    def build(cls, listing_ids: list[str], user_ids: list[str]) -> Catalog:
        return cls(
            listing_ids=np.asarray(listing_ids, dtype=object),
            user_ids=np.asarray(user_ids, dtype=object),
            item_index={lid: i for i, lid in enumerate(listing_ids)},
            user_index={uid: i for i, uid in enumerate(user_ids)},
        )

    @property
    def n_items(self) -> int:
        return len(self.listing_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


@runtime_checkable
class Recommender(Protocol):
    """A trained recommender (the two-stage pipeline, or a deterministic fallback ranking)."""

    name: str
    catalog: Catalog

    def recommend(self, query: Query, allowed: BoolArray | None = None) -> Candidates:
        """The top `query.k` items for the query, never an item with `allowed[i] == False`,
        never an item in `query.history` unless the model is told otherwise."""
        ...

    def similar(self, item: int, k: int, allowed: BoolArray | None = None) -> Candidates:
        """Items most similar to catalogue item `item` (not including it)."""
        ...
