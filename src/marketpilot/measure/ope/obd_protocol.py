"""The Open Bandit Dataset protocol of obp's ``examples/obd``: estimate the Bernoulli TS
policy's value from the uniform Random policy's logs and compare with BTS's on-policy value
(the mean click in the BTS logs of the same campaign).

- Evaluation policy: BTS with ZOZOTOWN's production prior (``prior_bts.yaml``), its action
  distribution computed as obp's ``compute_batch_action_dist`` does (:mod:`.bernoulli_ts`);
  context-free, so the same for every round.
- Context: one-hot of the four hashed user features (obp's ``pre_process``); action context:
  one-hot of the three hashed item features plus ``item_feature_0``.
- Reward model: cross-fitted (3 folds) logistic regression or LightGBM over
  [context, action context, slot].
- Estimators: ours (DM, IPS, SNIPS, DR, SNDR, Switch-DR); obp's estimators are never called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from marketpilot.measure.ope.base import BanditFeedback, OffPolicyEstimator
from marketpilot.measure.ope.bernoulli_ts import bernoulli_ts_action_dist
from marketpilot.measure.ope.direct import DirectMethod
from marketpilot.measure.ope.doubly_robust import DoublyRobust, SelfNormalizedDoublyRobust, SwitchDoublyRobust
from marketpilot.measure.ope.reward_model import Classifier, CrossFittedRewardModel
from marketpilot.measure.ope.runner import EstimatorResult, OffPolicyEvaluation
from marketpilot.measure.ope.weighting import (
    InverseProbabilityWeighting,
    SelfNormalizedInverseProbabilityWeighting,
)

__all__ = ["OBDReport", "RewardModelName", "default_estimators", "obd_feedback", "run_obd"]

RewardModelName = Literal["logistic", "lightgbm"]
PROTOCOL = ("obp examples/obd: value of Bernoulli TS (ZOZOTOWN prior) estimated from the Random policy's "
            "log of campaign {campaign}; ground truth = mean click in the BTS log; reward model = {model}, "
            "{folds}-fold cross-fitted; {n_boot} bootstrap resamples, {level:.0%} percentile intervals")


def default_estimators(switch_tau: float = 1.0) -> list[OffPolicyEstimator]:
    return [DirectMethod(), InverseProbabilityWeighting(), SelfNormalizedInverseProbabilityWeighting(),
            DoublyRobust(), SelfNormalizedDoublyRobust(), SwitchDoublyRobust(switch_tau)]


def _one_hot(columns: np.ndarray) -> np.ndarray:
    blocks = []
    for k in range(columns.shape[1]):
        _, inverse = np.unique(columns[:, k], return_inverse=True)
        blocks.append(np.eye(int(inverse.max()) + 1)[inverse])
    return np.hstack(blocks)


def _classifier(name: RewardModelName, seed: int) -> Classifier:
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=0.1, max_iter=1000)
    if name == "lightgbm":
        import lightgbm as lgb

        return lgb.LGBMClassifier(n_estimators=100, learning_rate=0.05, num_leaves=4, min_child_samples=50,
                                  random_state=seed, verbose=-1)
    raise ValueError(f"reward model must be 'logistic' or 'lightgbm', got {name!r}")


def obd_feedback(log: object, action_dist: np.ndarray, *, reward_model: RewardModelName = "logistic",
                 n_folds: int = 3, seed: int = 12345, rows: np.ndarray | None = None) -> BanditFeedback:
    """Bandit feedback of an OBD ``BanditLog`` (optionally the subset/resample ``rows``) with q fitted on it."""
    from marketpilot.datasets.obd import BanditLog

    if not isinstance(log, BanditLog):
        raise TypeError("log must be a marketpilot.datasets.obd.BanditLog")
    idx = np.arange(len(log)) if rows is None else rows
    action, position = log.item_id[idx], log.position0[idx]
    reward = log.click[idx].astype(np.float64)
    context = _one_hot(log.user_features)[idx]
    item = log.item_context
    action_context = np.hstack([_one_hot(item.categorical), item.item_feature_0[:, None]])
    q = CrossFittedRewardModel(lambda: _classifier(reward_model, seed), n_folds=n_folds, seed=seed).fit_predict(
        context, action_context, action, position, reward, action_dist.shape[1])
    dist = np.broadcast_to(action_dist, (idx.shape[0],) + action_dist.shape)
    return BanditFeedback(action=action, position=position, reward=reward, pscore=log.propensity_score[idx],
                          action_dist=dist, estimated_rewards=q)


@dataclass(frozen=True)
class OBDReport:
    dataset: str
    protocol: str
    on_policy_value: float
    results: dict[str, EstimatorResult]

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "on_policy_value": self.on_policy_value,
            "results": {name: {"estimate": r.estimate, "relative_error": r.relative_error,
                               "ci_low": r.ci_low, "ci_high": r.ci_high} for name, r in self.results.items()},
        }


def run_obd(campaign: str = "all", *, reward_model: RewardModelName = "logistic",
            estimators: Sequence[OffPolicyEstimator] | None = None, n_bootstrap: int = 1000,
            alpha: float = 0.05, n_sim: int = 100_000, seed: int = 12345) -> OBDReport:
    """The whole protocol on one campaign (all | men | women)."""
    from marketpilot.datasets import obd

    random_log = obd.load_log("random", campaign)
    bts_log = obd.load_log("bts", campaign)
    prior = obd.load_prior_bts()[campaign]
    action_dist = bernoulli_ts_action_dist(prior.alpha, prior.beta, len_list=random_log.n_positions, n_sim=n_sim,
                                           seed=seed)
    data = obd_feedback(random_log, action_dist, reward_model=reward_model, seed=seed)
    truth = float(bts_log.click.mean())
    runner = OffPolicyEvaluation(estimators if estimators is not None else default_estimators())
    results = runner.evaluate(data, ground_truth=truth, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)
    protocol = PROTOCOL.format(campaign=campaign, model=reward_model, folds=3, n_boot=n_bootstrap, level=1 - alpha)
    return OBDReport(dataset=f"obd/{campaign}", protocol=protocol, on_policy_value=truth, results=results)
