"""Implicit-feedback matrix factorisation (ALS, Hu, Koren & Volinsky 2008) via `implicit`.

Interaction weights (a purchase > a click > a view), scaled so the strongest is 1, become
confidences `alpha * w` (as in `implicit`).
Known users are scored with their fitted factors; a user the model has not seen (an anonymous
session, a user who arrived after training) is folded in: their factor is the exact
least-squares solution for their history given the item factors, which is what one more ALS
half-step would compute, so no refit is needed to serve them.
"""

from __future__ import annotations

import os
from typing import Self

import numpy as np
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.retrievers.base import Batch, Retriever

# implicit warns when BLAS itself is multithreaded; we pin BLAS to one thread around fits.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class ALS(Retriever):
    name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 2.0, iterations: int = 15,
                 seed: int = 0, threads: int = 1) -> None:
        if factors < 1 or iterations < 1 or regularization < 0 or alpha <= 0:
            raise ValueError("als: factors and iterations must be >= 1, regularization >= 0, alpha > 0")
        self.factors, self.regularization, self.alpha = int(factors), float(regularization), float(alpha)
        self.iterations, self.seed, self.threads = int(iterations), int(seed), int(threads)
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def fit(self, data: Interactions) -> Self:
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        x = data.matrix()
        if len(x.data):  # the strongest event type counts 1, so `alpha` means the same on any data
            x.data = x.data / float(x.data.max())
        model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha,
            iterations=self.iterations, random_state=self.seed, num_threads=self.threads,
            calculate_training_loss=False,
        )
        with threadpool_limits(1, "blas"):
            model.fit(x, show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        return self

    def fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """User factors for arbitrary history rows (least squares given the item factors)."""
        assert self.item_factors is not None
        y = self.item_factors.astype(np.float64)
        gram = y.T @ y + self.regularization * np.eye(y.shape[1])
        out = np.zeros((history.shape[0], y.shape[1]), np.float32)
        for r in range(history.shape[0]):
            lo, hi = history.indptr[r], history.indptr[r + 1]
            if hi == lo:
                continue
            w = history.data[lo:hi].astype(np.float64)
            items, conf = history.indices[lo:hi], self.alpha * w / max(float(w.max()), 1e-9)
            yi = y[items]
            a = gram + (yi.T * (conf - 1.0)) @ yi
            out[r] = np.linalg.solve(a, yi.T @ conf)
        return out

    def user_vectors(self, batch: Batch) -> np.ndarray:
        """The batch's user factors: fitted ones for known users, folded in for the rest."""
        if self.item_factors is None or self.user_factors is None:
            raise RuntimeError("als: fit() first")
        users = batch.users
        known = (users >= 0) & (users < len(self.user_factors))
        factors = np.empty((len(users), self.item_factors.shape[1]), np.float32)
        factors[known] = self.user_factors[users[known]]
        if not known.all():
            factors[~known] = self.fold_in(batch.history[np.flatnonzero(~known)])
        return factors

    def score(self, batch: Batch) -> np.ndarray:
        factors = self.user_vectors(batch)
        assert self.item_factors is not None
        return factors @ self.item_factors.T

    def state(self) -> dict[str, np.ndarray]:
        assert self.user_factors is not None and self.item_factors is not None
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, float | int]) -> Self:
        out = cls(int(params["factors"]), float(params["regularization"]), float(params["alpha"]),
                  int(params["iterations"]), int(params["seed"]))
        out.user_factors, out.item_factors = arrays["user_factors"], arrays["item_factors"]
        return out

    def params(self) -> dict[str, float | int]:
        return {"factors": self.factors, "regularization": self.regularization, "alpha": self.alpha,
                "iterations": self.iterations, "seed": self.seed}
