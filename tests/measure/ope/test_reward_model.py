"""Cross-fitting: every round is predicted by a model that never saw it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from marketpilot.measure.ope.reward_model import CrossFittedRewardModel


def test_predictions_are_out_of_fold() -> None:
    rng = np.random.default_rng(0)
    n = 300
    context = rng.normal(size=(n, 3))  # unique rows: a 1-NN model would recall its own label in-fold
    reward = (rng.random(n) < 0.5).astype(float)
    action, position = np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    q = CrossFittedRewardModel(lambda: KNeighborsClassifier(n_neighbors=1), n_folds=3).fit_predict(
        context, np.zeros((1, 1)), action, position, reward, len_list=1)
    assert q.shape == (n, 1, 1)
    agreement = float(np.mean(q[:, 0, 0] == reward))
    assert agreement < 0.65  # in-fold it would be 1.0; out of fold it is chance


def test_a_fold_with_one_class_predicts_its_mean() -> None:
    from sklearn.linear_model import LogisticRegression

    n = 30
    q = CrossFittedRewardModel(LogisticRegression, n_folds=3).fit_predict(
        np.zeros((n, 1)), np.eye(2), np.zeros(n, dtype=int), np.zeros(n, dtype=int), np.zeros(n), len_list=1)
    assert np.all(q == 0.0)
    with pytest.raises(ValueError, match="n_folds must be at least 2"):
        CrossFittedRewardModel(LogisticRegression, n_folds=1)
