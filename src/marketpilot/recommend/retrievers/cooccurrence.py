"""Item-to-item co-occurrence, normalised as a random walk (RP3beta, Paudel et al. 2017).

W[i, j] = (sum_u P(u | i) P(j | u))^alpha / popularity(j)^beta: the probability that a
two-step walk item -> user -> item from i lands on j, sharpened by `alpha` and discounted for
popular targets by `beta`, so that co-occurrence does not collapse into "everyone bought the
bestseller too". Only the `neighbours` strongest entries per row are kept, which keeps the
matrix sparse on large catalogues and also acts as denoising. A user's scores are x_u W.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.retrievers.base import ItemToItem, top_per_row


class CoOccurrence(ItemToItem):
    name = "cooc"

    def __init__(self, alpha: float = 0.8, beta: float = 0.3, neighbours: int = 200) -> None:
        if alpha <= 0 or beta < 0 or neighbours < 1:
            raise ValueError("cooc: alpha must be > 0, beta >= 0, neighbours >= 1")
        self.alpha, self.beta, self.neighbours = float(alpha), float(beta), int(neighbours)
        self.weights = None

    def fit(self, data: Interactions) -> Self:
        x = data.matrix(binary=True).astype(np.float64)
        user_n = np.asarray(x.sum(axis=1)).ravel()
        item_n = np.asarray(x.sum(axis=0)).ravel()
        p_ui = sp.diags(1.0 / np.maximum(user_n, 1.0)) @ x
        p_iu = sp.diags(1.0 / np.maximum(item_n, 1.0)) @ x.T.tocsr()
        walk = (p_iu @ p_ui).tocsr()
        walk.data **= self.alpha
        walk = walk @ sp.diags(1.0 / np.maximum(item_n, 1.0) ** self.beta)
        walk = walk.tocsr()
        walk.setdiag(0.0)
        walk.eliminate_zeros()
        self.weights = top_per_row(walk, self.neighbours).astype(np.float32)
        return self

    def params(self) -> dict[str, float | int]:
        return {"alpha": self.alpha, "beta": self.beta, "neighbours": self.neighbours}

