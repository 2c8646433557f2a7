"""The built-in `click` trainer: P(click | a listing was shown), a LightGBM model.

It exists so the training and retraining machinery is useful (and tested on real data)
before any capability registers its own trainer, and as the worked example of the
:class:`~marketpilot.platform.models.training.Trainer` contract. A ranking capability can
take it over; it is a baseline, not a ranker.

Data: every ``view`` in `interactions` before `as_of` is one row, labelled 1 if the same
user clicked the same listing in the same request (or, without a request id, the same
session) before `as_of`. Views with neither id cannot be matched to clicks and are left
out. Features are computed from the view and the listing/user tables with no fitted state
(categories are hashed, not looked up in a vocabulary), so a champion trained months ago is
scored on exactly the holdout rows a new challenger is:

========================  ===============================================================
position                  slot in the result list (0 = top); the strongest signal, since
                          buyers examine fewer items further down
log_price                 ``log1p(price in major units)``, the listing's current price
category_top, category    hashed first segment / full `category_path` (categorical)
hour, weekday             of the view, UTC
listing_age_days          days from the listing's creation to the view
region                    the user's hashed region (categorical)
========================  ===============================================================

Metrics: ``auc`` (primary, higher is better), ``log_loss``, ``brier``, ``click_rate`` and
``rows`` of the holdout.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from marketpilot.platform.db import schema as t
from marketpilot.platform.models.training import (
    DataSource,
    Examples,
    InsufficientData,
    MetricGoal,
    TrainedModel,
    Trainer,
    TrainingData,
)

FEATURES = (
    "position", "log_price", "category_top", "category", "hour", "weekday", "listing_age_days", "region",
)
CATEGORICAL = ("category_top", "category", "region")
_HASH_BUCKETS = 65_521  # a prime: few collisions among a marketplace's categories and regions


@lru_cache(maxsize=65_536)
def hash_code(value: str | None) -> float:
    """A stable category code (the same in every process and release); NaN for missing."""
    if value is None or value == "":
        return math.nan
    return float(zlib.crc32(value.encode()) % _HASH_BUCKETS)


class ClickTrainer(Trainer[Examples]):
    """Click-through model on the `interactions` table (see the module docstring).

    `max_rows` caps the rows read (the latest ones are kept). Training is deterministic
    for the same data: fixed seed, `num_threads` threads, LightGBM's deterministic mode.
    """

    goal = MetricGoal("auc", "higher")
    default_margin = 0.002  # AUC points; below that, two fits of the same data can differ

    def __init__(
        self,
        *,
        name: str = "click",
        rounds: int = 150,
        num_leaves: int = 15,
        learning_rate: float = 0.05,
        min_data_in_leaf: int = 40,
        num_threads: int = 1,
        seed: int = 7,
        max_rows: int = 5_000_000,
    ) -> None:
        self.name = name
        self.rounds = rounds
        self.max_rows = max_rows
        self.params: dict[str, Any] = {
            "objective": "binary",
            "num_leaves": num_leaves,
            "learning_rate": learning_rate,
            "min_data_in_leaf": min_data_in_leaf,
            "lambda_l2": 1.0,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "num_threads": num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "seed": seed,
            "verbose": -1,
        }

    def load_data(self, source: DataSource, as_of: datetime, holdout_fraction: float) -> TrainingData[Examples]:
        return TrainingData.from_examples(
            self.examples(source, as_of), as_of=as_of, holdout_fraction=holdout_fraction
        )

    def examples(self, source: DataSource, as_of: datetime) -> Examples:
        """Every labelled view before `as_of` (the latest `max_rows`), in time order."""
        view, click = aliased(t.Interaction), aliased(t.Interaction)
        context = func.coalesce(view.request_id, view.session_id)
        clicked = exists().where(
            and_(
                click.event == "click",
                click.user_id == view.user_id,
                click.listing_id == view.listing_id,
                func.coalesce(click.request_id, click.session_id) == context,
                click.timestamp < as_of,
            )
        )
        query = (
            select(
                view.timestamp, view.position, t.Listing.price_minor, t.Listing.category_path,
                t.Listing.created_at, t.User.region, clicked.label("clicked"),
            )
            .join(t.Listing, t.Listing.id == view.listing_id)
            .outerjoin(t.User, t.User.id == view.user_id)
            .where(view.event == "view", view.timestamp < as_of, context.is_not(None))
            .order_by(view.timestamp.desc(), view.id.desc())
            .limit(self.max_rows)
        )
        with source.db.session() as session:
            rows = list(session.execute(query))
        rows.reverse()  # read newest-first to keep the latest max_rows; train oldest-first
        return _examples(rows)

    def train(self, data: Examples) -> TrainedModel:
        import lightgbm as lgb

        from marketpilot.platform.monitoring.drift_reference import Reference

        labels = data.labels
        if len(data) == 0 or labels.min() == labels.max():
            raise InsufficientData(f"click: training needs both clicks and non-clicks ({len(data)} rows)")
        dataset = lgb.Dataset(
            data.features, label=labels, feature_name=list(data.feature_names),
            categorical_feature=list(data.categorical), free_raw_data=False,
        )
        booster = lgb.train(self.params, dataset, num_boost_round=self.rounds)
        reference = Reference.fit(
            data.features, np.asarray(booster.predict(data.features)), names=data.feature_names,
            categorical=data.categorical,
        )
        params = {**{k: v for k, v in self.params.items() if k != "verbose"}, "rounds": self.rounds}
        return TrainedModel(model=booster, params=params, reference=reference)

    def evaluate(self, model: object, holdout: Examples) -> Mapping[str, float]:
        from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

        predict = getattr(model, "predict", None)
        if predict is None:
            raise TypeError(f"click: cannot score a {type(model).__name__}")
        scores = np.clip(np.asarray(predict(holdout.features), dtype=np.float64), 1e-7, 1 - 1e-7)
        labels = holdout.labels
        both = len(holdout) > 0 and labels.min() != labels.max()
        return {
            "auc": float(roc_auc_score(labels, scores)) if both else math.nan,
            "log_loss": float(log_loss(labels, scores, labels=[0, 1])) if len(holdout) else math.nan,
            "brier": float(brier_score_loss(labels, scores)) if len(holdout) else math.nan,
            "click_rate": float(labels.mean()) if len(holdout) else math.nan,
            "rows": float(len(holdout)),
        }


def _examples(rows: Sequence[Any]) -> Examples:
    n = len(rows)
    if n == 0:
        raise InsufficientData("click: no views with a request or session id before as_of")
    x = np.full((n, len(FEATURES)), np.nan)
    times = np.empty(n, dtype="datetime64[us]")
    labels = np.empty(n, dtype=np.int64)
    for i, (at, position, price_minor, category, created_at, region, clicked) in enumerate(rows):
        at = _naive_utc(at)
        times[i] = at
        labels[i] = 1 if clicked else 0
        top = category.split("/", 1)[0] if category else None
        age = (at - _naive_utc(created_at)).total_seconds() / 86_400 if created_at is not None else math.nan
        x[i] = (
            math.nan if position is None else float(position),
            math.log1p(price_minor / 100) if price_minor is not None and price_minor >= 0 else math.nan,
            hash_code(top),
            hash_code(category),
            float(at.hour),
            float(at.weekday()),
            age,
            hash_code(region),
        )
    return Examples(features=x, labels=labels, times=times, feature_names=FEATURES, categorical=CATEGORICAL)


def _naive_utc(value: datetime) -> datetime:
    """Database timestamps are UTC; SQLite returns them naive, PostgreSQL aware."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
