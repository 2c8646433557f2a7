"""Stage 2: a LightGBM learning-to-rank model over the candidates of stage 1.

Trained on (candidate, label) groups, one group per user: labels come from interactions
held out from the retrievers that produced the candidates (never from ones they saw, which
would teach the ranker to trust whatever retriever memorised the training data best).
Training is deterministic: fixed seed, one thread, LightGBM's deterministic mode.

Scores are made strictly ordered by subtracting a vanishing multiple of the first
retriever's rank: a tree ensemble gives many candidates the same score, and ties at the top
would otherwise be broken by array order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OBJECTIVES = ("lambdarank", "binary")


@dataclass
class RankerConfig:
    objective: str = "lambdarank"
    trees: int = 300
    learning_rate: float = 0.03
    leaves: int = 31
    min_child_samples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"ranker: objective must be one of {OBJECTIVES}, got {self.objective!r}")


@dataclass
class Ranker:
    """A fitted LightGBM booster over named features."""

    feature_names: tuple[str, ...]
    config: RankerConfig = field(default_factory=RankerConfig)
    booster: Any = None
    tie_feature: int = 0

    def fit(self, features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> Ranker:
        import lightgbm as lgb

        keep = groups > 0
        params = {
            "objective": self.config.objective,
            "learning_rate": self.config.learning_rate,
            "num_leaves": self.config.leaves,
            "min_child_samples": self.config.min_child_samples,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "seed": self.config.seed,
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        if self.config.objective == "lambdarank":
            params["lambdarank_truncation_level"] = 20
        data = lgb.Dataset(features, label=labels, group=groups[keep] if self.config.objective == "lambdarank" else None,
                           feature_name=list(self.feature_names), free_raw_data=True)
        self.booster = lgb.train(params, data, num_boost_round=self.config.trees)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("ranker: fit() first")
        raw = self.booster.predict(features, num_threads=1)
        return (raw - 1e-7 * features[:, self.tie_feature]).astype(np.float64)

    def to_text(self) -> str:
        return str(self.booster.model_to_string())

    @classmethod
    def from_text(cls, text: str, feature_names: tuple[str, ...], config: RankerConfig, tie_feature: int) -> Ranker:
        import lightgbm as lgb

        return cls(feature_names, config, lgb.Booster(model_str=text), tie_feature)
