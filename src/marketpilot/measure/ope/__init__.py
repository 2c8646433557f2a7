"""Off-policy evaluation: six estimators behind one interface, bootstrap intervals, one runner.

>>> import numpy as np
>>> from marketpilot.measure.ope import BanditFeedback, InverseProbabilityWeighting
>>> dist = np.full((4, 2, 1), 0.5)                       # evaluation policy: uniform over 2 items
>>> data = BanditFeedback(action=np.array([0, 1, 0, 1]), position=np.zeros(4, dtype=int),
...                       reward=np.array([1.0, 0.0, 1.0, 0.0]), pscore=np.full(4, 0.5), action_dist=dist)
>>> InverseProbabilityWeighting().estimate_policy_value(data)
0.5
"""

from marketpilot.measure.ope.base import BanditFeedback, Interval, OffPolicyEstimator, RoundTerms
from marketpilot.measure.ope.bernoulli_ts import bernoulli_ts_action_dist
from marketpilot.measure.ope.bootstrap import bootstrap_interval
from marketpilot.measure.ope.direct import DirectMethod
from marketpilot.measure.ope.doubly_robust import DoublyRobust, SelfNormalizedDoublyRobust, SwitchDoublyRobust
from marketpilot.measure.ope.reward_model import CrossFittedRewardModel
from marketpilot.measure.ope.runner import EstimatorResult, OffPolicyEvaluation
from marketpilot.measure.ope.weighting import (
    InverseProbabilityWeighting,
    SelfNormalizedInverseProbabilityWeighting,
)

__all__ = [
    "BanditFeedback",
    "CrossFittedRewardModel",
    "DirectMethod",
    "DoublyRobust",
    "EstimatorResult",
    "InverseProbabilityWeighting",
    "Interval",
    "OffPolicyEstimator",
    "OffPolicyEvaluation",
    "RoundTerms",
    "SelfNormalizedDoublyRobust",
    "SelfNormalizedInverseProbabilityWeighting",
    "SwitchDoublyRobust",
    "bernoulli_ts_action_dist",
    "bootstrap_interval",
]
