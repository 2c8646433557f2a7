"""Session next-item signal: what people interacted with right after the items this user
(or anonymous session) touched most recently.

Fitting counts transitions a -> b between items up to `window` steps apart in each user's
time-ordered history, weighted 1/steps, and normalises each row to sum to 1 (a Markov
chain with skips). Scoring sums the rows of the `recent` last items of the batch, the latest
counting most (`decay` per step back). It needs no user id, so it serves sessions too.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.retrievers.base import Batch, Retriever


class SessionSequence(Retriever):
    name = "seq"

    def __init__(self, window: int = 3, recent: int = 5, decay: float = 0.7) -> None:
        if window < 1 or recent < 1 or not 0 < decay <= 1:
            raise ValueError("seq: window and recent must be >= 1, decay in (0, 1]")
        self.window, self.recent, self.decay = int(window), int(recent), float(decay)
        self.transitions: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> Self:
        n = data.catalog.n_items
        src, dst, steps = data.timeline_pairs(self.window)
        t = sp.csr_matrix(((1.0 / steps).astype(np.float32), (src, dst)), shape=(n, n))
        t.sum_duplicates()
        out = np.asarray(t.sum(axis=1)).ravel()
        self.transitions = (sp.diags(1.0 / np.maximum(out, 1e-9)) @ t).tocsr().astype(np.float32)
        return self

    def recent_weights(self, batch: Batch) -> sp.csr_matrix:
        """(len(batch), n_items): each query's last `recent` items, the newest weighted 1, the
        one before `decay`, and so on (an item seen twice adds up)."""
        indptr, cols, vals = self.recent_entries(batch)
        assert self.transitions is not None
        n = self.transitions.shape[0]
        return sp.csr_matrix((vals, cols, indptr), shape=(len(batch), n), dtype=np.float32)

    def recent_entries(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`recent_weights` as CSR arrays (indptr, items, weights), without building the matrix:
        a request's one row is read from these directly. A repeated item stays two entries of
        its row, which every product sums."""
        if self.transitions is None:
            raise RuntimeError("seq: fit() first")
        n = self.transitions.shape[0]
        cols, vals = [], []
        indptr = np.zeros(len(batch) + 1, np.int64)
        for r, items in enumerate(batch.recent or [np.empty(0, np.int64)] * len(batch)):
            last = np.asarray(items[-self.recent:], np.int64)[::-1]
            last = last[(last >= 0) & (last < n)]
            cols.append(last)
            vals.append(self.decay ** np.arange(len(last), dtype=np.float32))
            indptr[r + 1] = indptr[r] + len(last)
        return (indptr, np.concatenate(cols) if cols else np.empty(0, np.int64),
                np.concatenate(vals) if vals else np.empty(0, np.float32))

    def score(self, batch: Batch) -> np.ndarray:
        weights = self.recent_weights(batch)
        return np.asarray((weights @ self.transitions).toarray(), dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        assert self.transitions is not None
        t = self.transitions
        return {"data": t.data, "indices": t.indices, "indptr": t.indptr, "shape": np.asarray(t.shape, np.int64)}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, float | int]) -> Self:
        out = cls(int(params["window"]), int(params["recent"]), float(params["decay"]))
        shape = tuple(int(v) for v in arrays["shape"])
        out.transitions = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return out

    def params(self) -> dict[str, float | int]:
        return {"window": self.window, "recent": self.recent, "decay": self.decay}
