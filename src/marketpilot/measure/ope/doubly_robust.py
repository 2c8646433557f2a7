"""Doubly robust estimators: the reward model's value plus an importance-weighted correction
of its error on the logged action.

- DR: V = 1/n sum_i [ sum_a pi_e(a) q(x_i, a) + w_i (r_i - q(x_i, a_i)) ]; unbiased if either
  the propensities or the reward model are right.
- SNDR: the correction self-normalised, sum_i w_i (r_i - q_i) / sum_i w_i.
- Switch-DR: the correction only where w_i <= tau; rounds with larger weights fall back to the
  model (Wang, Agarwal & Dudik 2017). tau = inf is DR, tau = 0 is DM.
"""

from __future__ import annotations

import math

from marketpilot.measure.ope.base import BanditFeedback, OffPolicyEstimator, RoundTerms

__all__ = ["DoublyRobust", "SelfNormalizedDoublyRobust", "SwitchDoublyRobust"]


class DoublyRobust(OffPolicyEstimator):
    name = "dr"

    def round_terms(self, data: BanditFeedback) -> RoundTerms:
        w = data.importance_weight()
        residual = data.reward - data.factual_reward_estimate(self.name)
        return RoundTerms(direct=data.model_value(self.name), correction=w * residual)


class SelfNormalizedDoublyRobust(OffPolicyEstimator):
    name = "sndr"

    def round_terms(self, data: BanditFeedback) -> RoundTerms:
        w = data.importance_weight()
        residual = data.reward - data.factual_reward_estimate(self.name)
        return RoundTerms(direct=data.model_value(self.name), correction=w * residual, normaliser=w)


class SwitchDoublyRobust(OffPolicyEstimator):
    name = "switch_dr"

    def __init__(self, tau: float = 1.0) -> None:
        if not (tau >= 0 and not math.isnan(tau)):
            raise ValueError(f"tau must be a non-negative number, got {tau}")
        self.tau = tau

    def round_terms(self, data: BanditFeedback) -> RoundTerms:
        w = data.importance_weight()
        residual = data.reward - data.factual_reward_estimate(self.name)
        return RoundTerms(direct=data.model_value(self.name), correction=(w <= self.tau) * w * residual)
