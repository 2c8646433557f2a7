"""The ``fraud`` trainer: transactions -> point-in-time features -> :class:`FraudModel`, registered.

Data: every row of ``transactions`` before `as_of` (labels: ``label`` = 1 confirmed fraud,
anything else legitimate; analyst reviews write it), with ``users`` for account age and
home region. Features are computed by replaying the rows in event-time order through
:class:`~marketpilot.fraud.features.FeatureState`, the object the live service uses, so a
training row sees exactly what the request path saw at that moment; labels of the held-out
rows never reach the ``*_fraud_seen`` features. The model's own validation window (blend
weights, calibration, thresholds) is carved from the training part.

    from marketpilot.platform.models.training import run_training
    import marketpilot.fraud.train  # registers the trainer
    run_training("fraud", runtime)

Metrics on the holdout: ``recall_at_fpr`` (primary: recall at FPR 0.1 % read off the ROC),
``auc_roc``, ``auc_pr``, ``threshold_fpr``, ``threshold_recall``, ``rows``, ``frauds``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from marketpilot.fraud.base import DEFAULT_TARGET_FPR
from marketpilot.fraud.evaluation_data import replay
from marketpilot.fraud.features import FEATURES, FeatureState
from marketpilot.fraud.service import MODEL_NAME, _request_of
from marketpilot.platform.db import schema as t
from marketpilot.platform.models.training import (
    DataSource,
    Examples,
    InsufficientData,
    MetricGoal,
    TrainedModel,
    Trainer,
    TrainingData,
    register_trainer,
)

__all__ = ["FraudTrainer"]


class FraudTrainer(Trainer[Examples]):
    goal = MetricGoal("recall_at_fpr", "higher")
    default_margin = 0.01

    def __init__(self, *, name: str = MODEL_NAME, rounds: int = 400, mlp_hidden: tuple[int, ...] = (),
                 target_fpr: float = DEFAULT_TARGET_FPR, seed: int = 7) -> None:
        self.name = name
        self.rounds = rounds
        self.mlp_hidden = mlp_hidden
        self.target_fpr = target_fpr
        self.seed = seed

    def load_data(self, source: DataSource, as_of: datetime, holdout_fraction: float) -> TrainingData[Examples]:
        with source.db.read() as s:
            rows = list(s.scalars(select(t.Transaction).where(t.Transaction.timestamp < as_of)
                                  .order_by(t.Transaction.timestamp, t.Transaction.id)))
            users = list(s.execute(select(t.User.id, t.User.region, t.User.created_at)))
        if len(rows) < 10:
            raise InsufficientData(f"fraud: {len(rows)} transactions before {as_of.isoformat()}")
        labels = np.array([1 if r.label == 1 else 0 for r in rows], dtype=np.int64)
        state = FeatureState()
        state.add_users(users)
        n = len(rows)
        X = replay([_request_of(r) for r in rows], labels, state, labelled_until=n - math.ceil(n * holdout_fraction))
        times = pd.to_datetime([r.timestamp for r in rows], utc=True).tz_convert(None).to_numpy("datetime64[us]")
        examples = Examples(features=X, labels=labels, times=times, feature_names=FEATURES)
        return TrainingData.from_examples(examples, as_of=as_of, holdout_fraction=holdout_fraction)

    def train(self, data: Examples) -> TrainedModel:
        from marketpilot.fraud.model import FraudModel

        if len(data) == 0 or data.labels.min() == data.labels.max():
            raise InsufficientData(f"fraud: training needs frauds and legitimate payments ({len(data)} rows)")
        model = FraudModel(FEATURES, rounds=self.rounds, mlp_hidden=self.mlp_hidden, target_fpr=self.target_fpr,
                           seed=self.seed)
        try:
            model.fit(data.features, data.labels)
        except ValueError as exc:
            raise InsufficientData(f"fraud: {exc}") from None
        params: dict[str, str | int | float | bool] = {"rounds": self.rounds, "mlp_hidden": str(self.mlp_hidden), "target_fpr": self.target_fpr,
                  "seed": self.seed, "weights": ",".join(f"{w:.2f}" for w in model.weights_)}
        return TrainedModel(model=model, params=params)

    def evaluate(self, model: object, holdout: Examples) -> Mapping[str, float]:
        from marketpilot.fraud.evaluate import metrics

        labels = holdout.labels
        if len(holdout) == 0 or labels.min() == labels.max():
            return {"recall_at_fpr": math.nan, "rows": float(len(holdout)), "frauds": float(labels.sum())}
        raw = model.raw_score(holdout.features)  # type: ignore[attr-defined]
        m = metrics(labels, raw, model.raw_threshold_)  # type: ignore[attr-defined]
        return {"recall_at_fpr": m["recall_at_fpr_0.1pct"], "auc_roc": m["auc_roc"], "auc_pr": m["auc_pr"],
                "threshold_fpr": m["threshold_fpr"], "threshold_recall": m["threshold_recall"],
                "rows": float(len(holdout)), "frauds": float(labels.sum())}


register_trainer(FraudTrainer(), replace=True)
