"""Importance weighting: reweight logged rewards by how much likelier the evaluation policy
is to take the logged action.

- IPS: V = 1/n sum_i w_i r_i, unbiased when the logging propensities are right, high
  variance when weights are large.
- SNIPS: V = sum_i w_i r_i / sum_i w_i, slightly biased, much lower variance; invariant to a
  constant error in the propensities.
"""

from __future__ import annotations

import numpy as np

from marketpilot.measure.ope.base import BanditFeedback, OffPolicyEstimator, RoundTerms

__all__ = ["InverseProbabilityWeighting", "SelfNormalizedInverseProbabilityWeighting"]


class InverseProbabilityWeighting(OffPolicyEstimator):
    name = "ips"

    def round_terms(self, data: BanditFeedback) -> RoundTerms:
        return RoundTerms(direct=np.zeros(data.n_rounds), correction=data.importance_weight() * data.reward)


class SelfNormalizedInverseProbabilityWeighting(OffPolicyEstimator):
    name = "snips"

    def round_terms(self, data: BanditFeedback) -> RoundTerms:
        w = data.importance_weight()
        return RoundTerms(direct=np.zeros(data.n_rounds), correction=w * data.reward, normaliser=w)
