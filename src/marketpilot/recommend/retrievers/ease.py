"""EASE (Steck, 2019): a closed-form item-item linear model, the strongest simple baseline on
dense interaction data.

B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1 on the binary matrix X; a user's scores
are x_u B. The inverse is of an n_items x n_items matrix, so the retriever is skipped for
catalogues above `max_items` (time grows with the cube, memory with the square).
"""

from __future__ import annotations

from typing import Self

import numpy as np

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.retrievers.base import Batch, Retriever, binarize


class EASE(Retriever):
    name = "ease"
    max_items = 20_000

    def __init__(self, l2: float = 500.0) -> None:
        if not l2 > 0:
            raise ValueError(f"ease: l2 must be positive, got {l2}")
        self.l2 = float(l2)
        self.weights: np.ndarray | None = None

    def fit(self, data: Interactions) -> Self:
        x = data.matrix(binary=True)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = p / -np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        self.weights = b.astype(np.float32)
        return self

    def score(self, batch: Batch) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("ease: fit() first")
        return np.asarray(binarize(batch.history) @ self.weights, dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        assert self.weights is not None
        return {"weights": self.weights}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, float | int]) -> Self:
        out = cls(l2=float(params["l2"]))
        out.weights = arrays["weights"]
        return out

    def params(self) -> dict[str, float | int]:
        return {"l2": self.l2}
