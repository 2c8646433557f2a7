"""Cross-fitted reward model q(x, a, k) for the model-based estimators (DM, DR, SNDR, Switch-DR).

Cross-fitting (predict each round with a model that never saw it, as obp's
``RegressionModel.fit_predict(n_folds=...)`` does) keeps the DR correction term from being
shrunk towards zero by a model that memorised its own residuals.

Features of a (round, action, slot) triple: the round's context, the action's context row and
a one-hot slot; one model over all slots (per-slot models starve when clicks are rare, as in
the Open Bandit sample with ~13 clicks per slot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

__all__ = ["Classifier", "CrossFittedRewardModel", "design_matrix"]


class Classifier(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> object: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def design_matrix(context: np.ndarray, action_context: np.ndarray, action: np.ndarray, position: np.ndarray,
                  len_list: int) -> np.ndarray:
    """Rows [context_i, action_context[a_i], onehot(k_i)] for aligned (n,) ``action``/``position``."""
    slot = np.zeros((action.shape[0], len_list))
    slot[np.arange(action.shape[0]), position] = 1.0
    return np.hstack([context, action_context[action], slot])


class CrossFittedRewardModel:
    """``fit_predict`` returns q of shape (n, n_actions, len_list), each round predicted out of fold."""

    def __init__(self, make_classifier: Callable[[], Classifier], *, n_folds: int = 3, seed: int = 0) -> None:
        if n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {n_folds}")
        self.make_classifier = make_classifier
        self.n_folds = n_folds
        self.seed = seed

    def fit_predict(self, context: np.ndarray, action_context: np.ndarray, action: np.ndarray,
                    position: np.ndarray, reward: np.ndarray, len_list: int) -> np.ndarray:
        n, n_actions = context.shape[0], action_context.shape[0]
        if action.shape != (n,) or position.shape != (n,) or reward.shape != (n,):
            raise ValueError("context, action, position and reward must describe the same n rounds")
        folds = np.random.default_rng(self.seed).permutation(n) % self.n_folds
        q = np.empty((n, n_actions, len_list))
        all_a = np.repeat(np.arange(n_actions), len_list)
        all_k = np.tile(np.arange(len_list), n_actions)
        for f in range(self.n_folds):
            train, test = folds != f, np.flatnonzero(folds == f)
            model = self.make_classifier()
            if np.unique(reward[train]).size < 2:  # one class only: the constant is the best model
                q[test] = reward[train].mean()
                continue
            model.fit(design_matrix(context[train], action_context, action[train], position[train], len_list),
                      reward[train])
            rows = np.repeat(test, n_actions * len_list)
            X = design_matrix(context[rows], action_context, np.tile(all_a, test.size), np.tile(all_k, test.size),
                              len_list)
            q[test] = model.predict_proba(X)[:, 1].reshape(test.size, n_actions, len_list)
        return q
