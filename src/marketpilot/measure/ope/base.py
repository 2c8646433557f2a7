"""The contract every off-policy estimator shares.

An estimator turns logged bandit feedback plus the evaluation policy's action distribution
into per-round terms (:class:`RoundTerms`); the point estimate and the bootstrap interval are
both computed from those terms, so a new estimator is one small class and every estimator
gets intervals, the runner and the benchmarks for free (the design of obp's ``ope`` module,
minus its 2,400-line file).

Array shapes (``n`` logged rounds, ``n_actions`` items, ``len_list`` slots):

- ``action``, ``position``: int (n,), ``position`` 0-based;
- ``reward``: float (n,);  ``pscore``: float (n,), the logging policy's probability of the
  logged action at the logged position, in (0, 1];
- ``action_dist``: float (n, n_actions, len_list), the evaluation policy's probability of
  each action at each slot;
- ``estimated_rewards``: float (n, n_actions, len_list), a reward model's prediction
  q(x_i, a, k), needed by the model-based estimators only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

__all__ = ["BanditFeedback", "Interval", "OffPolicyEstimator", "RoundTerms"]


@dataclass(frozen=True)
class BanditFeedback:
    """Logged rounds plus what the evaluation needs; validated once, on construction."""

    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    action_dist: np.ndarray
    estimated_rewards: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.reward.shape[0] if self.reward.ndim == 1 else -1
        if n <= 0:
            raise ValueError("reward must be a non-empty 1-d array")
        for name in ("action", "position", "pscore"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
        if self.action_dist.ndim != 3 or self.action_dist.shape[0] != n:
            raise ValueError(f"action_dist must have shape ({n}, n_actions, len_list), got {self.action_dist.shape}")
        n_actions, len_list = self.action_dist.shape[1:]
        if np.any(self.pscore <= 0) or np.any(self.pscore > 1):
            raise ValueError("pscore must lie in (0, 1]")
        if self.action.min() < 0 or self.action.max() >= n_actions:
            raise ValueError(f"action must lie in [0, {n_actions})")
        if self.position.min() < 0 or self.position.max() >= len_list:
            raise ValueError(f"position must lie in [0, {len_list}) (0-based)")
        if np.any(self.action_dist < 0) or not np.allclose(self.action_dist.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("action_dist must be a distribution over actions for every round and slot")
        if self.estimated_rewards is not None and self.estimated_rewards.shape != self.action_dist.shape:
            raise ValueError(
                f"estimated_rewards must have the shape of action_dist {self.action_dist.shape}, "
                f"got {self.estimated_rewards.shape}")

    @property
    def n_rounds(self) -> int:
        return int(self.reward.shape[0])

    def importance_weight(self) -> np.ndarray:
        """w_i = pi_e(a_i | x_i, k_i) / pi_b(a_i | x_i, k_i), shape (n,)."""
        rows = np.arange(self.n_rounds)
        return self.action_dist[rows, self.action, self.position] / self.pscore

    def require_rewards(self, estimator: str) -> np.ndarray:
        if self.estimated_rewards is None:
            raise ValueError(f"{estimator} needs estimated_rewards (a reward model's predictions)")
        return self.estimated_rewards

    def model_value(self, estimator: str) -> np.ndarray:
        """The reward model's value of the evaluation policy per round: sum_a pi_e(a) q(x_i, a, k_i)."""
        q = self.require_rewards(estimator)
        rows = np.arange(self.n_rounds)
        return np.einsum("na,na->n", self.action_dist[rows, :, self.position], q[rows, :, self.position])

    def factual_reward_estimate(self, estimator: str) -> np.ndarray:
        """q(x_i, a_i, k_i): the reward model at the logged action, shape (n,)."""
        q = self.require_rewards(estimator)
        return q[np.arange(self.n_rounds), self.action, self.position]


@dataclass(frozen=True)
class RoundTerms:
    """value = mean(direct) + (sum(correction) / sum(normaliser) if normalised else mean(correction)).

    All six estimators are instances of this form, which is what lets one bootstrap serve them
    all: resample rounds, recombine the same three arrays.
    """

    direct: np.ndarray
    correction: np.ndarray
    normaliser: np.ndarray | None = None

    def value(self, idx: np.ndarray | None = None) -> np.ndarray | float:
        """The estimate; with ``idx`` of shape (B, n) one estimate per bootstrap resample."""
        if idx is None:
            tail = (self.correction.sum() / self.normaliser.sum()) if self.normaliser is not None \
                else self.correction.mean()
            return float(self.direct.mean() + tail)
        direct = self.direct[idx].mean(axis=1)
        if self.normaliser is None:
            return direct + self.correction[idx].mean(axis=1)
        den = self.normaliser[idx].sum(axis=1)
        num = self.correction[idx].sum(axis=1)
        return direct + np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


class OffPolicyEstimator(ABC):
    """Subclasses define ``name`` and :meth:`round_terms`; the rest is shared."""

    name: str = ""

    @abstractmethod
    def round_terms(self, data: BanditFeedback) -> RoundTerms: ...

    def estimate_policy_value(self, data: BanditFeedback) -> float:
        return float(self.round_terms(data).value())

    def estimate_interval(self, data: BanditFeedback, *, n_bootstrap: int = 1000, alpha: float = 0.05,
                          seed: int = 0) -> Interval:
        from marketpilot.measure.ope.bootstrap import bootstrap_interval

        return bootstrap_interval(self.round_terms(data), n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)
