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


class ItemToItem(Retriever):
    """A retriever whose state is one sparse item x item matrix `weights`: a user's scores are
    the sum of the rows of the items in their history (x_u W, history binarised). Stage 1
    reads the rows directly for one-user requests and similar-listing lookups, and grows the
    matrix when listings are added."""

    weights: sp.csr_matrix | None = None

    def score(self, batch: Batch) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError(f"{self.name}: fit() first")
        return np.asarray((binarize(batch.history) @ self.weights).toarray(), dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        assert self.weights is not None
        w = self.weights
        return {"data": w.data, "indices": w.indices, "indptr": w.indptr, "shape": np.asarray(w.shape, np.int64)}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, float | int]) -> Self:
        out = cls(**params)  # each subclass's constructor takes its params()
        shape = tuple(int(v) for v in arrays["shape"])
        out.weights = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return out


def top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row."""
    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    keep = np.zeros(len(m.data), bool)
    for r in np.flatnonzero(counts):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        row = m.data[lo:hi]
        if hi - lo <= k:
            keep[lo:hi] = True
        else:
            keep[lo + np.argpartition(-row, k - 1)[:k]] = True
    rows = np.repeat(np.arange(m.shape[0]), counts)
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
