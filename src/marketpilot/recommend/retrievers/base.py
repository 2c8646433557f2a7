"""The contract every stage-1 retriever fulfils.

A retriever is fitted on the training :class:`~marketpilot.recommend.interactions.Interactions`
and then scores every catalogue item for a batch of users, each given by a catalogue index
(-1 for a user it has never seen) and a row of the interaction matrix (their history, which
may hold items the retriever learnt nothing about, as for an anonymous session). Scores are
dense float32 rows because the catalogues the pipeline ranks over in one call are small
enough for that, and a dense row is the fastest thing to take the top of; retrievers whose
state grows with the square of the catalogue say so through `max_items`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions


@dataclass(frozen=True, eq=False)
class Batch:
    """The users to score: catalogue indices (-1 = unknown), their weighted history rows
    (n_users_in_batch x n_items CSR) and, for order-aware retrievers, each one's recent items
    (most recent last)."""

    users: np.ndarray
    history: sp.csr_matrix
    recent: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.users)


class Retriever(ABC):
    """Fitted once, then `score(batch)` -> (len(batch), n_items) float32."""

    name: str
    max_items: int | None = None  # above this catalogue size the retriever is skipped

    @abstractmethod
    def fit(self, data: Interactions) -> Self:
        """Learn from `data` (its catalogue fixes the item indices)."""

    @abstractmethod
    def score(self, batch: Batch) -> np.ndarray:
        """Scores of every item for each user of the batch."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays, to persist (names are identifiers; no object arrays)."""

    @classmethod
    @abstractmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, float | int]) -> Self:
        """Rebuild a fitted retriever from `state()` and `params()`."""

    @abstractmethod
    def params(self) -> dict[str, float | int]:
        """Hyperparameters (recorded with the model version)."""


def binarize(history: sp.csr_matrix) -> sp.csr_matrix:
    """The same rows with every stored value set to 1."""
    out = history.copy().astype(np.float32)
    out.data[:] = 1.0
    return out
