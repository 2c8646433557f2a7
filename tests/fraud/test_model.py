from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from fraud_data import Fitted

from marketpilot.fraud.model import FraudModel, threshold_for_fpr
from marketpilot.platform.models import artifacts


def test_threshold_for_fpr_flags_at_most_the_target_share() -> None:
    neg = np.arange(1000, dtype=float)
    t = threshold_for_fpr(neg, 0.01)
    assert (neg >= t).sum() == 10
    assert (neg >= threshold_for_fpr(neg, 0.0)).sum() == 0
    assert threshold_for_fpr(np.array([]), 0.01) == math.inf


def test_thresholds_meet_the_target_fpr_on_the_validation_window(fitted: Fitted) -> None:
    m, X, y = fitted.model, fitted.X, fitted.labels
    start = m.validation_["start_row"]
    # the models were refitted on every row, so re-check with a model fitted without refit
    early = FraudModel(m.feature_names, rounds=60, mlp_hidden=(), iso_trees=50, target_fpr=0.01, refit=False).fit(X, y)
    raw = early.raw_score(X[start:])
    assert (raw[y[start:] == 0] >= early.raw_threshold_).mean() <= 0.01
    assert early.raw_block_threshold_ >= early.raw_threshold_
    assert 0.0 <= m.threshold_ <= m.block_threshold_ <= 1.0


def test_model_separates_rings_from_buyers_and_explains_with_features(fitted: Fitted) -> None:
    m, X, y = fitted.model, fitted.X, fitted.labels
    p = m.predict_proba(X)[:, 1]
    assert p[y == 1].mean() > 0.5 > p[y == 0].mean()
    ring_row = X[np.flatnonzero(y == 1)[-1]]
    contrib = m.contributions(ring_row)
    assert contrib.shape == (len(m.contribution_names),)
    assert m.weights_.sum() == pytest.approx(1.0)


def test_fit_refuses_a_window_without_frauds() -> None:
    X = np.random.default_rng(0).normal(size=(200, 3))
    y = np.zeros(200, dtype=int)
    y[:5] = 1  # all frauds early: none in the validation window
    with pytest.raises(ValueError, match="validation window"):
        FraudModel(rounds=5, mlp_hidden=()).fit(X, y)


def test_round_trips_through_the_registry_artifact_format(fitted: Fitted, tmp_path: Path) -> None:
    assert artifacts.save_model(fitted.model, tmp_path / "m") == "sklearn"
    loaded = artifacts.load_model(tmp_path / "m")
    assert isinstance(loaded, FraudModel)
    np.testing.assert_allclose(loaded.raw_score(fitted.X[:50]), fitted.model.raw_score(fitted.X[:50]))
    assert loaded.raw_threshold_ == fitted.model.raw_threshold_


def test_the_one_row_request_path_matches_the_batch_scores(fitted: Fitted) -> None:
    m, X = fitted.model, fitted.X[-40:]
    batch_raw = m.raw_score(X)
    batch_anomaly = -m.iso_.score_samples(m._fill(X))
    for i in range(len(X)):
        raw, contrib, anomaly = m.explain_one(X[i])
        assert raw == pytest.approx(batch_raw[i], rel=1e-9, abs=1e-9)
        assert anomaly == pytest.approx(batch_anomaly[i], rel=1e-12)
        np.testing.assert_allclose(contrib, m.contributions(X[i]))


def test_a_registered_fraud_model_is_served_on_v2_as_a_classifier(fitted: Fitted, tmp_path: Path) -> None:
    from marketpilot.platform.models.serving_adapters import OUTPUT, sklearn_model

    assert artifacts.save_model(fitted.model, tmp_path / "m") == "sklearn"
    served = sklearn_model(artifacts.load_model(tmp_path / "m"), name="fraud", version="1")
    assert served.outputs[0].shape == (-1, 2) and served.inputs[0].shape == (-1, fitted.X.shape[1])
    X = np.ascontiguousarray(fitted.X[-30:])
    proba = served.predict({"input__0": X})[OUTPUT]
    np.testing.assert_allclose(proba, fitted.model.predict_proba(X))
    flagged = fitted.model.predict(fitted.X)
    assert set(np.unique(flagged)) <= {0, 1}
    np.testing.assert_array_equal(flagged, fitted.model.raw_score(fitted.X) >= fitted.model.raw_threshold_)
    assert flagged[fitted.labels == 1].mean() > flagged[fitted.labels == 0].mean()
