"""The "recommend" trainer: the two-stage pipeline on the marketplace's own interactions.

Data: every interaction before `as_of`, with the listings (text, seller) and users (region)
tables as side information. The holdout is the latest `holdout_fraction` of interactions by
time (the platform's rule: a model is judged on the future it did not see). The pipeline is
persisted as an :class:`~marketpilot.platform.models.artifacts.ArrayBundle` (arrays plus JSON
metadata, the LightGBM ranker as text; no pickle), so a registered version loads by alias with
``TwoStagePipeline.from_bundle(registry.load("recommend", "champion"))``.

Metric: ``ndcg_at_10`` (primary; MLflow allows no "@") of the holdout's (user, listing) pairs that were not already in
the user's training history, over users the model knows; also ``recall_at_10`` and ``users``.

Register it with ``register_trainer(RecommendTrainer())``; the platform's built-in table
(`platform/models/training.py` ``_BUILTIN``) needs the line
``"recommend": "marketpilot.recommend.trainer:RecommendTrainer"`` for ``marketpilot train
recommend`` to find it without an import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from marketpilot.platform.db import schema as t
from marketpilot.platform.models.fingerprints import fingerprint
from marketpilot.platform.models.training import (
    DataSource,
    DataSummary,
    InsufficientData,
    MetricGoal,
    TrainedModel,
    Trainer,
    TrainingData,
)

K = 10


@dataclass(frozen=True, eq=False)
class RecommendData:
    """Interactions to learn from or to score (`interactions`), the history before them
    (`history`, empty for the training part) and the catalogue side tables."""

    interactions: pd.DataFrame
    history: pd.DataFrame
    listings: pd.DataFrame
    users: pd.DataFrame


class RecommendTrainer(Trainer[RecommendData]):
    goal = MetricGoal("ndcg_at_10", "higher")
    default_margin = 0.005  # NDCG points; two fits on one holdout differ by less

    def __init__(self, *, name: str = "recommend", config: object | None = None) -> None:
        self.name = name
        self.config = config

    def load_data(self, source: DataSource, as_of: datetime, holdout_fraction: float) -> TrainingData[RecommendData]:
        with source.db.read() as session:
            rows = session.execute(
                select(t.Interaction.user_id, t.Interaction.listing_id, t.Interaction.event, t.Interaction.value,
                       t.Interaction.timestamp)
                .where(t.Interaction.timestamp < as_of)
                .order_by(t.Interaction.timestamp, t.Interaction.id)
            ).all()
            listings = session.execute(
                select(t.Listing.id, t.Listing.seller_id, t.Listing.title, t.Listing.category_path,
                       t.Listing.attributes).order_by(t.Listing.id)
            ).all()
            users = session.execute(select(t.User.id, t.User.region).order_by(t.User.id)).all()
        frame = pd.DataFrame(rows, columns=["user_id", "listing_id", "event", "value", "timestamp"])
        if len(frame) < 2:
            raise InsufficientData(f"recommend: {len(frame)} interactions before {as_of.isoformat()}")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        listing_frame = pd.DataFrame(listings, columns=["listing_id", "seller_id", "title", "category_path", "attributes"])
        listing_frame["attributes"] = [json.dumps(a or {}, sort_keys=True) for a in listing_frame["attributes"]]
        user_frame = pd.DataFrame(users, columns=["user_id", "region"])
        times = frame["timestamp"].to_numpy()
        held = int(np.ceil(len(frame) * holdout_fraction))
        boundary = times[len(frame) - held]
        start = int(np.searchsorted(times, boundary, side="left"))
        if start == 0:
            raise InsufficientData("recommend: every interaction is at the holdout boundary; nothing to train on")
        train, holdout = frame.iloc[:start].reset_index(drop=True), frame.iloc[start:].reset_index(drop=True)
        summary = DataSummary(
            as_of=as_of,
            holdout_start=pd.Timestamp(boundary).to_pydatetime(),
            train_rows=len(train),
            holdout_rows=len(holdout),
            fingerprint=fingerprint(frame.assign(timestamp=frame["timestamp"].astype("int64")), listing_frame, user_frame),
        )
        empty = frame.iloc[:0]
        return TrainingData(
            train=RecommendData(train, empty, listing_frame, user_frame),
            holdout=RecommendData(holdout, train, listing_frame, user_frame),
            summary=summary,
        )

    def train(self, data: RecommendData) -> TrainedModel:
        from marketpilot.recommend.catalog_data import fit_pipeline

        pipeline = fit_pipeline(data.interactions, data.listings, data.users, self.config)
        params: dict[str, str | int | float | bool] = {
            "uses_ranker": pipeline.uses_ranker,
            "retrievers": ",".join(pipeline.retrievers),
            "ranker_objective": pipeline.config.ranker.objective,
            "validation_holdout": pipeline.config.validation_holdout,
        }
        params |= {f"validation.{k}": round(v, 6) for k, v in pipeline.validation.items()}
        return TrainedModel(model=pipeline.to_bundle(), params=params)

    def evaluate(self, model: object, holdout: RecommendData) -> Mapping[str, float]:
        from marketpilot.recommend.catalog_data import holdout_metrics
        from marketpilot.recommend.pipeline import TwoStagePipeline

        pipeline = model if isinstance(model, TwoStagePipeline) else TwoStagePipeline.from_bundle(model)
        return holdout_metrics(pipeline, holdout.history, holdout.interactions, K)
