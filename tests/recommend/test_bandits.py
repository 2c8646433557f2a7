"""Slot-level exploration: the budget is never exceeded (also under concurrency and across
days), logged propensities match how often the policy really shows an item at a position,
and the learning policies move exploration toward the pool items that earn rewards."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from marketpilot.recommend.bandits import (
    BudgetLimits,
    EpsilonGreedy,
    ExplorationBudget,
    LinUCB,
    SlateRequest,
    ThompsonSampling,
)

N_ITEMS = 60
VALUES = np.linspace(200.0, 20.0, N_ITEMS)  # expected GMV per impression, minor units: the ranker's order


def _request(session_class: str = "new/mobile", k: int = 10, pool: int = 20, features: np.ndarray | None = None) -> SlateRequest:
    return SlateRequest(
        session_class=session_class,
        slate=np.arange(k, dtype=np.int64),
        pool=np.arange(k, k + pool, dtype=np.int64),
        values=VALUES,
        features=features,
    )


def unlimited() -> ExplorationBudget:
    return ExplorationBudget(default=BudgetLimits(max_explored_share=1.0))


def test_the_first_slot_is_never_explored_and_explored_slots_hold_pool_items() -> None:
    rng = np.random.default_rng(0)
    policy, budget = EpsilonGreedy(epsilon=1.0), unlimited()
    for _ in range(50):
        out = policy.explore(_request(), budget, rng)
        assert out.items[0] == 0 and not out.explored[0]
        assert out.explored[1:].all() and set(out.items[1:].tolist()) <= set(range(10, 30))
        assert len(set(out.items.tolist())) == 10


def test_epsilon_greedy_propensities_are_the_real_marginal_frequencies() -> None:
    rng = np.random.default_rng(1)
    policy, budget = EpsilonGreedy(epsilon=0.2), unlimited()
    runs = 8_000
    counts = np.zeros((10, N_ITEMS))
    logged: dict[tuple[int, int], float] = {}
    for _ in range(runs):
        out = policy.explore(_request(), budget, rng)
        counts[np.arange(10), out.items] += 1
        for p, (item, prop) in enumerate(zip(out.items, out.propensities, strict=True)):
            logged[(p, int(item))] = prop
    for (p, item), prop in logged.items():
        assert counts[p, item] / runs == pytest.approx(prop, abs=0.015), (p, item)


@pytest.mark.parametrize("policy_name", ["epsilon", "thompson", "linucb"])
def test_the_budget_is_never_exceeded_under_concurrency_and_resets_each_day(policy_name: str) -> None:
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    limits = BudgetLimits(max_explored_share=0.05, max_gmv_loss_per_day=5_000.0)
    budget = ExplorationBudget(default=limits, limits={"returning/desktop": BudgetLimits(0.02)}, clock=lambda: now[0])
    features = np.random.default_rng(9).normal(size=(N_ITEMS, 4))
    policy = {
        "epsilon": EpsilonGreedy(epsilon=1.0),
        "thompson": ThompsonSampling(N_ITEMS, prior=(5.0, 1.0)),  # the pool looks attractive: it wants to explore
        "linucb": LinUCB(4, alpha=50.0),
    }[policy_name]

    def serve(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for i in range(300):
            cls = "returning/desktop" if i % 3 == 0 else "new/mobile"
            policy.explore(_request(cls, features=features), budget, rng)

    for _day in range(3):
        threads = [threading.Thread(target=serve, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        now[0] += timedelta(days=1)
    accounts = budget.accounts()
    assert len(accounts) == 6  # two classes on three days
    for (cls, _day), account in accounts.items():
        cap = budget.limits_for(cls)
        assert account.slots == (400 if cls == "returning/desktop" else 800) * 10
        assert account.explored <= cap.max_explored_share * account.slots
        assert account.gmv_given_up <= cap.max_gmv_loss_per_day
        assert account.explored > 0  # the policy did want to explore: the caps were binding


def test_a_refused_slot_is_logged_as_certain() -> None:
    budget = ExplorationBudget(default=BudgetLimits(max_explored_share=0.0))
    out = EpsilonGreedy(epsilon=1.0).explore(_request(), budget, np.random.default_rng(2))
    assert np.array_equal(out.items, np.arange(10)) and (out.propensities == 1.0).all() and out.expected_gmv_given_up == 0


def test_thompson_sampling_learns_which_pool_items_earn_rewards() -> None:
    rng = np.random.default_rng(3)
    true_ctr = np.full(N_ITEMS, 0.02)
    true_ctr[:10] = 0.05  # the ranker's slate is decent
    true_ctr[25] = 0.30  # one pool item is far better
    policy, budget = ThompsonSampling(N_ITEMS), unlimited()
    shown_25, explored = [], []
    for _ in range(3000):
        out = policy.explore(_request(), budget, rng)
        assert ((out.propensities > 0) & (out.propensities <= 1)).all()
        rewards = (rng.random(10) < true_ctr[out.items]).astype(float)
        policy.update(out.items, rewards)
        shown_25.append(25 in out.items)
        explored.append(out.explored.sum())
    assert np.mean(shown_25[-500:]) > 0.9
    # At first every pool item looks as good as the slate's and most slots are explored;
    # once it knows the rest of the pool is worse, it mostly keeps the ranker's items.
    assert np.mean(explored[-500:]) < 0.5 * np.mean(explored[:100])


def test_linucb_moves_exploration_toward_items_whose_features_pay() -> None:
    rng = np.random.default_rng(4)
    features = rng.normal(size=(N_ITEMS, 3))
    weight = np.array([1.0, 0.0, 0.0])
    reward_rate = 1 / (1 + np.exp(-(features @ weight) * 3))
    policy, budget = LinUCB(3, alpha=0.5), unlimited()
    request = _request(features=features)
    picked_value = []
    for _ in range(1500):
        out = policy.explore(request, budget, rng)
        rewards = (rng.random(10) < reward_rate[out.items]).astype(float)
        policy.update(out.items, rewards, features)
        if out.explored.any():
            picked_value.append(reward_rate[out.items[out.explored]].mean())
    best_pool = np.sort(reward_rate[10:30])[-9:].mean()
    assert np.mean(picked_value[-200:]) > 0.9 * best_pool > np.mean(reward_rate[10:30])


def test_linucb_slot_propensities_sum_to_one_over_what_it_could_show() -> None:
    features = np.random.default_rng(5).normal(size=(N_ITEMS, 3))
    policy = LinUCB(3, epsilon_floor=0.1)
    request = _request(k=2, pool=5, features=features)
    available = np.ones(5, dtype=bool)
    _, p_keep, _ = policy._choose(request, 1, available, np.random.default_rng(0))
    total = p_keep
    seen = set()
    for seed in range(400):
        choice, _, p_choice = policy._choose(request, 1, available, np.random.default_rng(seed))
        if choice >= 0 and choice not in seen:
            seen.add(choice)
            total += p_choice
    assert total == pytest.approx(1.0)
