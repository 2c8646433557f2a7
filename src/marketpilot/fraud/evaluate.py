"""Offline evaluation of fraud scoring against baselines on one time-ordered split.

Protocol (printed with the numbers): rows sorted by event time; the earlier 80 % train,
the later 20 % test. Every system is fitted on the training part only; anything tuned
(our blend weights, calibration, every system's decision threshold) uses a *validation
window*, the latest 20 % of the training part, never the test part. Metrics on the test
part: ``auc_roc``, ``auc_pr`` (average precision), ``recall_at_fpr_0.1pct`` (recall read
off the ROC curve at FPR 0.1 %, interpolated), and the realised ``threshold_fpr`` /
``threshold_recall`` of the threshold each system chose on its validation window for a
0.1 % FPR target.

Systems: ``marketpilot`` (:class:`~marketpilot.fraud.model.FraudModel`), ``logreg``
(standardised logistic regression), ``isolation_forest`` (unsupervised, alone) and
``lightgbm_raw`` (LightGBM with its default parameters on the raw columns).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from marketpilot.fraud.base import DEFAULT_TARGET_FPR
from marketpilot.fraud.model import threshold_for_fpr

__all__ = ["EvalData", "evaluate", "metrics", "protocol"]

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.2
SEED = 7


@dataclass
class EvalData:
    """Rows in event-time order: our features, the raw columns (baselines), labels, ids."""

    name: str
    features: np.ndarray
    feature_names: tuple[str, ...]
    raw: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. ring membership (simulated)


def protocol(data: EvalData) -> dict[str, Any]:
    n = len(data.labels)
    cut = n - int(math.ceil(n * TEST_FRACTION))
    train_rows = cut
    val_rows = int(math.ceil(train_rows * VALIDATION_FRACTION))
    return {
        "split": "time-ordered: train = earliest 80% of rows, test = latest 20%",
        "validation": "latest 20% of the training part; blend weights, calibration and every threshold are chosen there",
        "target_fpr": DEFAULT_TARGET_FPR,
        "recall_at_fpr_0.1pct": "ROC curve on the test part, recall interpolated at FPR 0.001",
        "threshold_fpr/threshold_recall": "realised on the test part at the threshold chosen on the validation window",
        "rows": {"train": train_rows, "validation": val_rows, "test": n - cut},
        "frauds": {"train": int(data.labels[:cut].sum()), "test": int(data.labels[cut:].sum())},
        "seed": SEED,
    }


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    flagged = scores >= threshold
    neg, pos = labels == 0, labels == 1
    return {
        "auc_roc": float(roc_auc_score(labels, scores)),
        "auc_pr": float(average_precision_score(labels, scores)),
        "recall_at_fpr_0.1pct": float(np.interp(0.001, fpr, tpr)),
        "threshold_fpr": float(flagged[neg].mean()) if neg.any() else math.nan,
        "threshold_recall": float(flagged[pos].mean()) if pos.any() else math.nan,
    }


Fit = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _with_validation_threshold(fit: Fit, X: np.ndarray, y: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, float]:
    """Fit on the training part minus its validation window, choose the threshold there;
    refit on the whole training part and score the test part with that threshold."""
    cut = len(y) - int(math.ceil(len(y) * VALIDATION_FRACTION))
    early = fit(X[:cut], y[:cut])
    val_scores = early(X[cut:])
    threshold = threshold_for_fpr(val_scores[y[cut:] == 0], DEFAULT_TARGET_FPR)
    return fit(X, y)(X_test), threshold


def _logreg(X: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fill = np.nanmedian(X, axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(np.where(np.isnan(X), fill, X), y)
    return lambda Z: model.decision_function(np.where(np.isnan(Z), fill, Z))


def _isolation_forest(X: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.ensemble import IsolationForest

    fill = np.nanmedian(X, axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    model = IsolationForest(n_estimators=100, random_state=SEED, n_jobs=1).fit(np.where(np.isnan(X), fill, X))
    return lambda Z: -model.score_samples(np.where(np.isnan(Z), fill, Z))


def _lightgbm_raw(X: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    import lightgbm as lgb

    params = {"objective": "binary", "seed": SEED, "num_threads": 1, "deterministic": True, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=100)  # LightGBM's defaults
    return lambda Z: np.asarray(booster.predict(Z, raw_score=True), dtype=np.float64)


def evaluate(data: EvalData, *, out: Path | None = None, progress: Callable[[str], None] | None = None
             ) -> dict[str, Any]:
    """Fit every system on the training part and measure it on the test part."""
    from marketpilot.fraud.model import FraudModel

    say = progress or (lambda _msg: None)
    n = len(data.labels)
    cut = n - int(math.ceil(n * TEST_FRACTION))
    y_train, y_test = data.labels[:cut], data.labels[cut:]
    results: dict[str, dict[str, float]] = {}
    scores: dict[str, np.ndarray] = {}

    say("marketpilot")
    model = FraudModel(data.feature_names, validation_fraction=VALIDATION_FRACTION, seed=SEED).fit(
        data.features[:cut], y_train)
    scores["marketpilot"] = model.raw_score(data.features[cut:])
    results["marketpilot"] = metrics(y_test, scores["marketpilot"], model.raw_threshold_)
    baselines: dict[str, tuple[Fit, np.ndarray]] = {
        "logreg": (_logreg, data.raw),
        "isolation_forest": (_isolation_forest, data.raw),
        "lightgbm_raw": (_lightgbm_raw, data.raw),
    }
    for name, (fit, X) in baselines.items():
        say(name)
        scores[name], threshold = _with_validation_threshold(fit, X[:cut], y_train, X[cut:])
        results[name] = metrics(y_test, scores[name], threshold)
    extra = {"blend_weights": dict(zip(("lightgbm", "logistic", "mlp"), map(float, model.weights_), strict=True)),
             "validation_choice": model.validation_choice_}
    if out is not None:
        write_scores(out, data.ids[cut:], y_test, scores)
    return {"results": results, "model": extra, "test_slice": (cut, n), "scores": scores, "fraud_model": model}


def write_scores(out: Path, ids: np.ndarray, labels: np.ndarray, scores: dict[str, np.ndarray]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scores.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "label", "score", "system"])
        for system, s in scores.items():
            for i, label, value in zip(ids.tolist(), labels.tolist(), s.tolist(), strict=True):
                writer.writerow([i, int(label), repr(float(value)), system])
    return path
