"""The fraud model: LightGBM, logistic and MLP models blended, an IsolationForest anomaly score
as a feature and as the fallback, calibrated, with thresholds for a target false-positive rate.

Why each part:

* **LightGBM** finds interactions (new account *and* shared device *and* expensive) and
  gives per-feature contributions (``pred_contrib``) for the reasons of each decision.
* **A logistic model** on robustly scaled features and their squares is the strong
  baseline on PCA-like inputs and extrapolates more gently than trees; an optional small
  **MLP** adds smooth interactions. The blend is a weighted average of the three models'
  standardised log-odds, weights chosen on the validation window (below).
* **IsolationForest**, fitted on the training rows without labels, scores how unusual a row
  is: the GBDT gets it as one more feature (``anomaly``), and it is the documented fallback
  when the supervised model cannot be used (its own threshold, chosen the same way).
* **Calibration and thresholds** come from a *validation window*: the latest
  `validation_fraction` of the training rows (time order), never the rows a model is
  evaluated on. The models are fitted on the earlier rows, the blend weights are picked on
  the window (best recall at the target FPR), the blend is calibrated by isotonic
  regression on the window, and the review threshold is the score above which at
  most `target_fpr` of the window's legitimate rows fall (block: `block_fpr`). With
  ``refit=True`` the models are then refitted on all training rows with the same settings
  (more recent frauds seen), keeping the calibration and thresholds of the window.

Hot path: :meth:`FraudModel.explain_one` takes one feature row (numpy), computes the
anomaly score once (a flattened forest, no scikit-learn call), the LightGBM contributions
once (their sum is the margin) and touches no pandas and no I/O. The whole object is a
scikit-learn estimator, so the registry stores it with skops (the LightGBM booster travels
as its text model).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["DEFAULT_LGB_PARAMS", "FraudModel", "flatten_isolation_forest", "isolation_score", "threshold_for_fpr"]

DEFAULT_LGB_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.01,
    "num_leaves": 7,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "scale_pos_weight": 5.0,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


def threshold_for_fpr(negative_scores: np.ndarray, fpr: float) -> float:
    """The lowest score threshold (``score >= t`` flags) flagging at most `fpr` of `negative_scores`."""
    neg = np.sort(np.asarray(negative_scores, dtype=np.float64))
    if len(neg) == 0:
        return math.inf
    allowed = int(math.floor(fpr * len(neg)))  # negatives allowed at or above the threshold
    if allowed >= len(neg):
        return float(neg[0])
    # strictly above the (allowed+1)-th highest negative
    return float(np.nextafter(neg[len(neg) - allowed - 1], np.inf))


class FraudModel(BaseEstimator):
    """See the module docstring. `fit(X, y)` expects rows in event-time order."""

    def __init__(
        self,
        feature_names: Sequence[str] = (),
        *,
        rounds: int = 800,
        lgb_params: dict[str, Any] | None = None,
        logistic_c: float = 0.01,
        mlp_hidden: tuple[int, ...] = (32,),
        blend_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
        anomaly_feature: bool = True,
        iso_trees: int = 100,
        target_fpr: float = 0.001,
        block_fpr: float = 0.0001,
        validation_fraction: float = 0.2,
        refit: bool = True,
        seed: int = 7,
        num_threads: int = 1,
    ) -> None:
        self.feature_names = feature_names
        self.rounds = rounds
        self.lgb_params = lgb_params
        self.logistic_c = logistic_c
        self.mlp_hidden = mlp_hidden
        self.blend_grid = blend_grid
        self.anomaly_feature = anomaly_feature
        self.iso_trees = iso_trees
        self.target_fpr = target_fpr
        self.block_fpr = block_fpr
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.seed = seed
        self.num_threads = num_threads

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray) -> FraudModel:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        n = len(y)
        cut = n - int(math.ceil(n * self.validation_fraction))
        if cut < 1 or y[:cut].min() == y[:cut].max() or y[cut:].min() == y[cut:].max():
            raise ValueError("fraud model: the fit part and the validation window both need frauds and legitimate rows")
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])  # a scikit-learn classifier: V2 serving returns predict_proba
        self.feature_names_ = tuple(self.feature_names) or tuple(f"f{i}" for i in range(X.shape[1]))
        self._fit_parts(X[:cut], y[:cut])
        Xv, yv = X[cut:], y[cut:]
        self.weights_ = self._choose_weights(self._margins(Xv), yv)
        raw_v = self._raw(Xv)
        self._calibrate(raw_v, yv)
        anomaly_v = self.anomaly(Xv)
        self.fallback_threshold_ = threshold_for_fpr(anomaly_v[yv == 0], self.target_fpr)
        self.fallback_block_threshold_ = threshold_for_fpr(anomaly_v[yv == 0], self.block_fpr)
        self.validation_ = {"rows": int(len(yv)), "frauds": int(yv.sum()), "start_row": int(cut)}
        if self.refit:
            # same settings, all training rows; the window's calibration and thresholds stay
            self._fit_parts(X, y, keep_scales=True)
        return self

    def _fit_parts(self, X: np.ndarray, y: np.ndarray, *, keep_scales: bool = False) -> None:
        import lightgbm as lgb
        from sklearn.ensemble import IsolationForest
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():  # a column missing everywhere has no median: 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            self.median_ = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
        self.median_ = np.where(np.isfinite(self.median_), self.median_, 0.0)
        filled = self._fill(X)
        lo, hi = np.percentile(filled, [0.1, 99.9], axis=0)
        self.clip_lo_, self.clip_hi_ = lo, hi
        clipped = np.clip(filled, lo, hi)
        self.mean_ = clipped.mean(axis=0)
        self.scale_ = np.where(clipped.std(axis=0) > 0, clipped.std(axis=0), 1.0)
        self.iso_ = IsolationForest(n_estimators=self.iso_trees, random_state=self.seed, n_jobs=1).fit(filled)
        self.forest_ = flatten_isolation_forest(self.iso_)
        from sklearn.neural_network import MLPClassifier

        scaled = self._scaled(X)
        logistic = LogisticRegression(C=self.logistic_c, max_iter=5000).fit(_quadratic(scaled), y)
        self.coef_ = logistic.coef_[0].astype(np.float64)
        self.intercept_ = float(logistic.intercept_[0])
        self.mlp_ = None
        if self.mlp_hidden:
            from sklearn.exceptions import ConvergenceWarning

            with warnings.catch_warnings():  # 30 epochs on purpose: early stopping by budget
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.mlp_ = MLPClassifier(hidden_layer_sizes=tuple(self.mlp_hidden), alpha=1e-2, max_iter=30,
                                          random_state=self.seed).fit(scaled, y)
        params = {**DEFAULT_LGB_PARAMS, **(self.lgb_params or {}), "seed": self.seed, "num_threads": self.num_threads}
        booster = lgb.train(params, lgb.Dataset(self._gbdt_input(X), label=y), num_boost_round=self.rounds)
        self.booster_text_ = booster.model_to_string()
        self._booster = booster
        if not keep_scales:
            # the blend standardises each model's log-odds with its spread on the fit rows
            self.blend_scale_ = np.ones(3)
            spread = self._margins(X).std(axis=0)
            self.blend_scale_ = np.where(spread > 0, spread, 1.0)

    def _choose_weights(self, margins: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Blend weights (LightGBM, logistic, MLP) from `blend_grid` with the best recall at
        `target_fpr` on the validation window (ties: higher AUC, then more LightGBM weight,
        whose contributions explain the decisions)."""
        from itertools import product

        from sklearn.metrics import roc_auc_score, roc_curve

        best: tuple[float, float, float] | None = None
        chosen = np.array([1.0, 0.0, 0.0])
        parts = 3 if self.mlp_ is not None else 2
        for combo in product(self.blend_grid, repeat=parts):
            w = np.array([*combo, 0.0][:3], dtype=np.float64)
            if w.sum() <= 0:
                continue
            w = w / w.sum()
            s = margins @ w
            fpr, tpr, _ = roc_curve(y, s)
            key = (float(np.interp(self.target_fpr, fpr, tpr)), float(roc_auc_score(y, s)), float(w[0]))
            if best is None or key > best:
                best, chosen = key, w
        self.validation_choice_ = {"recall_at_target_fpr": best[0], "auc_roc": best[1]} if best else {}
        return chosen

    def _calibrate(self, raw: np.ndarray, y: np.ndarray) -> None:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        self.calib_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.calib_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        neg = raw[y == 0]
        # thresholds live on the raw blend (isotonic steps would tie many scores)
        self.raw_threshold_ = threshold_for_fpr(neg, self.target_fpr)
        self.raw_block_threshold_ = max(threshold_for_fpr(neg, self.block_fpr), self.raw_threshold_)
        self.threshold_ = float(self.calibrated(np.array([self.raw_threshold_]))[0])
        self.block_threshold_ = float(self.calibrated(np.array([self.raw_block_threshold_]))[0])

    # -- scoring ------------------------------------------------------------------------------

    def _fill(self, X: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(X), X, self.median_)

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return (np.clip(self._fill(X), self.clip_lo_, self.clip_hi_) - self.mean_) / self.scale_

    def anomaly(self, X: np.ndarray) -> np.ndarray:
        """IsolationForest anomaly score (higher = more unusual), in (0, 1]: ``-score_samples``.
        Batches go through scikit-learn; one row through the flattened forest (sklearn's
        per-call overhead is milliseconds, the flat walk tens of microseconds)."""
        X = self._fill(np.asarray(X, dtype=np.float64))
        if len(X) == 1 and getattr(self, "forest_", None) is not None:
            return np.array([isolation_score(self.forest_, X[0])])
        return -self.iso_.score_samples(X)

    def explain_one(self, x: np.ndarray) -> tuple[float, np.ndarray, float]:
        """(raw blend score, LightGBM contributions, anomaly score) of one row, each part
        computed once: the request path."""
        row = np.asarray(x, dtype=np.float64).reshape(1, -1)
        anomaly = float(self.anomaly(row)[0])
        gbdt = np.column_stack([row, [[anomaly]]]) if self.anomaly_feature else row
        contrib = np.asarray(self.booster.predict(gbdt, pred_contrib=True, num_threads=1))[0]
        margins = np.zeros(3)
        margins[0] = contrib.sum()  # contributions + bias = the raw LightGBM margin
        scaled = self._scaled(row)
        margins[1] = float(_quadratic(scaled)[0] @ self.coef_ + self.intercept_)
        if self.mlp_ is not None:
            p = float(np.clip(self.mlp_.predict_proba(scaled)[0, 1], 1e-12, 1 - 1e-12))
            margins[2] = math.log(p / (1 - p))
        raw = float((margins / self.blend_scale_) @ self.weights_)
        return raw, contrib[:-1], anomaly

    def _gbdt_input(self, X: np.ndarray) -> np.ndarray:
        if not self.anomaly_feature:
            return X
        return np.column_stack([X, self.anomaly(X)])

    @property
    def booster(self) -> Any:
        booster = getattr(self, "_booster", None)
        if booster is None:
            import lightgbm as lgb

            booster = self._booster = lgb.Booster(model_str=self.booster_text_)
        return booster

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_booster", None)  # rebuilt from booster_text_ on first use
        return state

    def _margins(self, X: np.ndarray) -> np.ndarray:
        """(n, 3) standardised log-odds of LightGBM, the logistic model and the MLP."""
        scaled = self._scaled(X)
        out = np.zeros((len(X), 3))
        out[:, 0] = self.booster.predict(self._gbdt_input(X), raw_score=True, num_threads=self.num_threads)
        out[:, 1] = _quadratic(scaled) @ self.coef_ + self.intercept_
        if self.mlp_ is not None:
            p = np.clip(self.mlp_.predict_proba(scaled)[:, 1], 1e-12, 1 - 1e-12)
            out[:, 2] = np.log(p / (1 - p))
        return out / self.blend_scale_

    def _raw(self, X: np.ndarray) -> np.ndarray:
        return self._margins(X) @ self.weights_

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """The uncalibrated blend (a ranking score; thresholds compare against it)."""
        return self._raw(np.asarray(X, dtype=np.float64))

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(raw, self.calib_x_, self.calib_y_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.calibrated(self.raw_score(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 where the blend reaches the review threshold (review or block), else 0."""
        return (self.raw_score(X) >= self.raw_threshold_).astype(np.int64)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature pushes on the LightGBM log-odds for one row (the last entry of
        LightGBM's output, the bias, is dropped; with the anomaly feature, it is included)."""
        row = self._gbdt_input(np.asarray(x, dtype=np.float64).reshape(1, -1))
        return np.asarray(self.booster.predict(row, pred_contrib=True, num_threads=1))[0, :-1]

    @property
    def contribution_names(self) -> tuple[str, ...]:
        return (*self.feature_names_, "anomaly") if self.anomaly_feature else tuple(self.feature_names_)


def _quadratic(scaled: np.ndarray) -> np.ndarray:
    """Scaled features and their squares: the logistic model sees "far from typical in either
    direction", which PCA-style inputs need (frauds sit in both tails of some components)."""
    return np.column_stack([scaled, scaled**2])


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected path length of an unsuccessful BST search among n points (Liu et al.), as sklearn."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def flatten_isolation_forest(iso: Any) -> dict[str, np.ndarray]:
    """The forest as flat arrays (all trees' nodes concatenated) for a vectorised one-row walk.
    Leaf value = depth + average path length of the leaf's samples, as sklearn scores."""
    left, right, feature, threshold, value, roots = [], [], [], [], [], []
    offset = 0
    for est, feats in zip(iso.estimators_, iso.estimators_features_, strict=True):
        tree = est.tree_
        n = tree.node_count
        depth = np.zeros(n)
        for node in range(n):  # children come after parents in sklearn's node order
            for child in (tree.children_left[node], tree.children_right[node]):
                if child >= 0:
                    depth[child] = depth[node] + 1
        is_leaf = tree.children_left == -1
        left.append(np.where(is_leaf, np.arange(n), tree.children_left) + offset)
        right.append(np.where(is_leaf, np.arange(n), tree.children_right) + offset)
        feature.append(np.where(is_leaf, 0, np.asarray(feats)[np.maximum(tree.feature, 0)]))
        threshold.append(np.where(is_leaf, np.inf, tree.threshold))
        value.append(np.where(is_leaf, depth + _average_path_length(tree.n_node_samples), 0.0))
        roots.append(offset)
        offset += n
    return {
        "left": np.concatenate(left).astype(np.int64), "right": np.concatenate(right).astype(np.int64),
        "feature": np.concatenate(feature).astype(np.int64), "threshold": np.concatenate(threshold),
        "value": np.concatenate(value), "roots": np.array(roots, dtype=np.int64),
        "norm": np.array([len(iso.estimators_) * float(_average_path_length(np.array([iso.max_samples_]))[0])]),
    }


def isolation_score(forest: dict[str, np.ndarray], x: np.ndarray) -> float:
    """``-IsolationForest.score_samples`` of one (filled) row from :func:`flatten_isolation_forest`."""
    node = forest["roots"].copy()
    left, right, feature, threshold = forest["left"], forest["right"], forest["feature"], forest["threshold"]
    while True:
        nxt = np.where(x[feature[node]] <= threshold[node], left[node], right[node])
        if np.array_equal(nxt, node):
            break
        node = nxt
    return float(2.0 ** (-forest["value"][node].sum() / forest["norm"][0]))
