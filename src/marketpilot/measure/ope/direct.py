"""Direct method: trust the reward model entirely.

V_DM = 1/n sum_i sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i). Low variance; biased exactly as
much as the reward model is wrong.
"""

from __future__ import annotations

import numpy as np

from marketpilot.measure.ope.base import BanditFeedback, OffPolicyEstimator, RoundTerms

__all__ = ["DirectMethod"]


class DirectMethod(OffPolicyEstimator):
    name = "dm"

    def round_terms(self, data: BanditFeedback) -> RoundTerms:
        return RoundTerms(direct=data.model_value(self.name), correction=np.zeros(data.n_rounds))
