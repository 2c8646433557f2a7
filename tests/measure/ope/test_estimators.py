"""Every estimator through the shared contract, on a synthetic slate log with a known value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketpilot.measure.ope import (
    BanditFeedback,
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    OffPolicyEstimator,
    OffPolicyEvaluation,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
)

ALL: list[OffPolicyEstimator] = [DirectMethod(), InverseProbabilityWeighting(),
                                 SelfNormalizedInverseProbabilityWeighting(), DoublyRobust(),
                                 SelfNormalizedDoublyRobust(), SwitchDoublyRobust(tau=5.0)]


def synthetic(n: int = 20_000, n_actions: int = 6, len_list: int = 2, seed: int = 0,
              model_noise: float = 0.0) -> tuple[BanditFeedback, float]:
    """Uniform logging over (action, slot) per round; a softmax evaluation policy; known value."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    theta = np.linspace(-1, 1, n_actions)
    slot_effect = np.array([0.0, -0.5])[:len_list]
    logits = -2.0 + theta[None, :, None] * x[:, None, None] + slot_effect[None, None, :]  # (n, A, K)
    p_click = 1 / (1 + np.exp(-logits))
    position = rng.integers(0, len_list, n)
    action = rng.integers(0, n_actions, n)
    reward = (rng.random(n) < p_click[np.arange(n), action, position]).astype(float)
    prefs = np.exp(1.5 * theta)[None, :, None] * np.ones((n, 1, len_list))
    dist = prefs / prefs.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    truth = float(np.einsum("na,na->n", dist[rows, :, position], p_click[rows, :, position]).mean())
    q = np.clip(p_click + model_noise * rng.normal(size=p_click.shape), 1e-4, 1 - 1e-4)
    return BanditFeedback(action=action, position=position, reward=reward, pscore=np.full(n, 1 / n_actions),
                          action_dist=dist, estimated_rewards=q), truth


@pytest.mark.parametrize("estimator", ALL, ids=lambda e: e.name)
def test_each_estimator_recovers_the_true_value(estimator: OffPolicyEstimator) -> None:
    data, truth = synthetic()
    ci = estimator.estimate_interval(data, n_bootstrap=300, seed=1)
    assert ci.low <= ci.estimate <= ci.high
    assert abs(ci.estimate - truth) / truth < 0.06
    assert ci.low - 0.01 <= truth <= ci.high + 0.01


@pytest.mark.parametrize("estimator", [e for e in ALL if e.name != "dm"], ids=lambda e: e.name)
def test_weighted_estimators_intervals_cover_the_truth_most_of_the_time(estimator: OffPolicyEstimator) -> None:
    covered = 0
    for seed in range(20):
        data, truth = synthetic(n=4_000, seed=seed, model_noise=0.05)
        ci = estimator.estimate_interval(data, n_bootstrap=200, seed=seed)
        covered += ci.low <= truth <= ci.high
    assert covered >= 16


def test_doubly_robust_corrects_a_wrong_model_and_dm_does_not() -> None:
    data, truth = synthetic(model_noise=0.0)
    biased = BanditFeedback(action=data.action, position=data.position, reward=data.reward, pscore=data.pscore,
                            action_dist=data.action_dist, estimated_rewards=data.require_rewards("t") * 0.6)
    dm = DirectMethod().estimate_policy_value(biased)
    dr = DoublyRobust().estimate_policy_value(biased)
    assert abs(dm - truth) / truth > 0.3
    assert abs(dr - truth) / truth < 0.06


def test_switch_dr_spans_dm_and_dr() -> None:
    data, _ = synthetic(n=3_000)
    assert SwitchDoublyRobust(0.0).estimate_policy_value(data) == pytest.approx(DirectMethod().estimate_policy_value(data))
    assert SwitchDoublyRobust(math.inf).estimate_policy_value(data) == pytest.approx(
        DoublyRobust().estimate_policy_value(data))


def test_self_normalisation_ignores_a_constant_error_in_the_propensities() -> None:
    data, _ = synthetic(n=3_000)
    scaled = BanditFeedback(action=data.action, position=data.position, reward=data.reward,
                            pscore=data.pscore * 0.5, action_dist=data.action_dist)
    snips = SelfNormalizedInverseProbabilityWeighting()
    assert snips.estimate_policy_value(scaled) == pytest.approx(snips.estimate_policy_value(data))
    ips = InverseProbabilityWeighting()
    assert ips.estimate_policy_value(scaled) == pytest.approx(2 * ips.estimate_policy_value(data))


def test_the_runner_compares_every_estimator_with_relative_errors() -> None:
    data, truth = synthetic(n=3_000)
    results = OffPolicyEvaluation(ALL).evaluate(data, ground_truth=truth, n_bootstrap=50)
    assert list(results) == ["dm", "ips", "snips", "dr", "sndr", "switch_dr"]
    for r in results.values():
        assert r.relative_error == pytest.approx(abs(r.estimate - truth) / truth)
    with pytest.raises(ValueError, match="names must be unique"):
        OffPolicyEvaluation([DirectMethod(), DirectMethod()])
    with pytest.raises(ValueError, match="ground_truth must be non-zero"):
        OffPolicyEvaluation(ALL).evaluate(data, ground_truth=0.0)


def test_model_based_estimators_need_a_reward_model() -> None:
    data, _ = synthetic(n=100)
    bare = BanditFeedback(action=data.action, position=data.position, reward=data.reward, pscore=data.pscore,
                          action_dist=data.action_dist)
    with pytest.raises(ValueError, match="dr needs estimated_rewards"):
        DoublyRobust().estimate_policy_value(bare)


N = 4
GOOD = dict(action=np.array([0, 1, 0, 1]), position=np.zeros(N, dtype=int), reward=np.ones(N),
            pscore=np.full(N, 0.5), action_dist=np.full((N, 2, 1), 0.5))


@pytest.mark.parametrize(("change", "message"), [
    ({"reward": np.ones((2, 2))}, "reward must be a non-empty 1-d array"),
    ({"action": np.zeros(3, dtype=int)}, r"action must have shape \(4,\)"),
    ({"pscore": np.array([0.5, 0.5, 0.0, 0.5])}, r"pscore must lie in \(0, 1\]"),
    ({"action": np.array([0, 1, 2, 0])}, r"action must lie in \[0, 2\)"),
    ({"position": np.array([0, 0, 1, 0])}, r"position must lie in \[0, 1\) \(0-based\)"),
    ({"action_dist": np.full((N, 2, 1), 0.7)}, "action_dist must be a distribution"),
    ({"action_dist": np.full((N, 2), 0.5)}, r"action_dist must have shape \(4, n_actions, len_list\)"),
    ({"estimated_rewards": np.zeros((N, 3, 1))}, "estimated_rewards must have the shape of action_dist"),
])
def test_bad_feedback_is_refused_with_the_exact_reason(change: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BanditFeedback(**{**GOOD, **change})


def test_bootstrap_parameters_are_checked() -> None:
    data = BanditFeedback(**GOOD)
    with pytest.raises(ValueError, match="n_bootstrap must be at least 10"):
        InverseProbabilityWeighting().estimate_interval(data, n_bootstrap=5)
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\)"):
        InverseProbabilityWeighting().estimate_interval(data, alpha=1.0)
