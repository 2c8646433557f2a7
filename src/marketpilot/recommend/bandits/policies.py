"""Slot-level exploration over a ranked slate: epsilon-greedy, Thompson sampling and LinUCB.

The ranker proposes a slate (its top `k`) and a pool of exploration candidates (items it
ranked lower, cold-start listings). For every explorable slot (by default all but the
first) the policy either keeps the ranker's item (exploit) or puts a pool item there
(explore), subject to the :class:`~.budget.ExplorationBudget`: a slot the budget refuses is
exploited. Every served item carries the probability that the policy would show it at that
position (`propensities`), which is what off-policy evaluation of the logs needs:

- epsilon-greedy explores a slot with probability epsilon and fills it from a random
  permutation of the pool drawn once per slate, so an explored slot holds any pool item with
  probability 1/|pool| whatever happened at other slots: the marginal propensity is exact,
  ``1 - epsilon`` for the ranker's item and ``epsilon / |pool|`` for a pool item;
- Thompson sampling draws a click-through rate for the ranker's item and every pool item
  from their Beta posteriors and explores when the best pool draw beats the ranker's item;
  propensities are estimated from `propensity_draws` extra posterior draws (as obp does for
  its Bernoulli TS policy), floored at 1/propensity_draws;
- LinUCB (shared linear model over item features, ridge-regularised) explores when a pool
  item's upper confidence bound beats the ranker's item's. It is deterministic given its
  state, so with probability `epsilon_floor` the slot is instead filled uniformly from the
  ranker's item and the pool, which keeps every item's propensity above zero.

Propensities are per slot and conditional on the slate's other slots being what they are;
a budget refusal makes the slot deterministic (propensity 1 for the ranker's item).

Rewards are slot-level (a click or purchase on the item shown at a position):
:meth:`update` feeds them back. Written here, not taken from a library: bandit packages
(MABWiser, obp's policies) choose one action per round; none fills slots of a ranked slate
under a GMV budget with logged per-position propensities.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from marketpilot.recommend.bandits.budget import ExplorationBudget
from marketpilot.recommend.fairness import position_weights

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SlateRequest:
    """One slate to explore over. `slate` and `pool` are item indices; `values` gives each
    item's expected GMV per impression (minor units) by item index, used to price exploration;
    `features` (LinUCB) holds each item's feature vector by item index."""

    session_class: str
    slate: IntArray
    pool: IntArray
    values: FloatArray
    features: FloatArray | None = None
    first_explorable: int = 1
    keys: IntArray | None = None  # stable item ids (catalogue indices) when items are request-local

    def key(self, items: IntArray) -> IntArray:
        return items if self.keys is None else self.keys[items]


@dataclass(frozen=True, slots=True)
class ExploredSlate:
    items: IntArray
    propensities: FloatArray
    explored: BoolArray
    expected_gmv_given_up: float
    policy: str


class ExplorationPolicy(Protocol):
    name: str

    def explore(self, request: SlateRequest, budget: ExplorationBudget, rng: np.random.Generator) -> ExploredSlate: ...

    def update(self, items: IntArray, rewards: FloatArray, features: FloatArray | None = None) -> None: ...


def _loss(request: SlateRequest, position: int, shown: int, weights: FloatArray) -> float:
    kept = int(request.slate[position])
    return float(weights[position] * max(0.0, request.values[kept] - request.values[shown]))


class _SlotFiller:
    """The shared loop: per explorable slot, ask the policy for a candidate, ask the budget."""

    name = "base"

    def explore(self, request: SlateRequest, budget: ExplorationBudget, rng: np.random.Generator) -> ExploredSlate:
        k = len(request.slate)
        items = request.slate.astype(np.int64).copy()
        propensities = np.ones(k, dtype=np.float64)
        explored = np.zeros(k, dtype=bool)
        weights = position_weights(k)
        available = np.ones(len(request.pool), dtype=bool)
        given_up = 0.0
        self._begin(request, rng)
        try:
            for position in range(min(request.first_explorable, k), k):
                choice, p_keep, p_choice = self._choose(request, position, available, rng)
                if choice < 0:
                    propensities[position] = p_keep
                    continue
                shown = int(request.pool[choice])
                loss = _loss(request, position, shown, weights)
                if budget.try_explore(request.session_class, k, loss):
                    items[position], propensities[position], explored[position] = shown, p_choice, True
                    available[choice] = False
                    given_up += loss
                # refused: the budget made the slot deterministic, propensity 1
        finally:
            budget.close_slate(request.session_class, k)
        return ExploredSlate(items, propensities, explored, given_up, self.name)

    def _begin(self, request: SlateRequest, rng: np.random.Generator) -> None:  # noqa: B027 - optional hook
        pass

    def _choose(
        self, request: SlateRequest, position: int, available: BoolArray, rng: np.random.Generator
    ) -> tuple[int, float, float]:
        """(pool index to explore or -1, propensity of keeping, propensity of the choice)."""
        raise NotImplementedError


class EpsilonGreedy(_SlotFiller):
    name = "epsilon_greedy"

    def __init__(self, epsilon: float = 0.1) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be within [0, 1], got {epsilon}")
        self.epsilon = epsilon
        self._order: IntArray = np.empty(0, dtype=np.int64)
        self._next = 0

    def _begin(self, request: SlateRequest, rng: np.random.Generator) -> None:
        self._order = rng.permutation(len(request.pool))
        self._next = 0

    def _choose(
        self, request: SlateRequest, position: int, available: BoolArray, rng: np.random.Generator
    ) -> tuple[int, float, float]:
        pool = len(request.pool)
        if pool == 0 or self._next >= pool or rng.random() >= self.epsilon:
            return -1, (1.0 - self.epsilon) if pool else 1.0, 0.0
        choice = int(self._order[self._next])
        self._next += 1
        return choice, 1.0 - self.epsilon, self.epsilon / pool

    def update(self, items: IntArray, rewards: FloatArray, features: FloatArray | None = None) -> None:
        """Epsilon-greedy learns nothing itself: the ranker is retrained on the logs."""


class ThompsonSampling(_SlotFiller):
    """Beta-Bernoulli posteriors of each item's slot-level reward rate, one per catalogue item
    (:meth:`resize` when listings are added)."""

    name = "thompson"

    def __init__(self, n_items: int, *, prior: tuple[float, float] = (1.0, 20.0), propensity_draws: int = 200) -> None:
        self.prior = prior
        self.propensity_draws = propensity_draws
        self._alpha = np.full(n_items, prior[0])
        self._beta = np.full(n_items, prior[1])
        self._lock = threading.Lock()

    def _choose(
        self, request: SlateRequest, position: int, available: BoolArray, rng: np.random.Generator
    ) -> tuple[int, float, float]:
        candidates = np.flatnonzero(available)
        if len(candidates) == 0:
            return -1, 1.0, 0.0
        kept = int(request.slate[position])
        ids = request.key(np.concatenate(([kept], request.pool[candidates])))
        a, b = self._alpha[ids], self._beta[ids]
        draws = rng.beta(a, b, size=(self.propensity_draws + 1, len(ids)))
        winners = np.argmax(draws, axis=1)
        frequency = np.bincount(winners[1:], minlength=len(ids)) / self.propensity_draws
        floor = 1.0 / self.propensity_draws
        winner = int(winners[0])
        if winner == 0:
            return -1, max(float(frequency[0]), floor), 0.0
        return int(candidates[winner - 1]), max(float(frequency[0]), floor), max(float(frequency[winner]), floor)

    def resize(self, n_items: int) -> None:
        with self._lock:
            grow = n_items - len(self._alpha)
            if grow > 0:
                self._alpha = np.concatenate((self._alpha, np.full(grow, self.prior[0])))
                self._beta = np.concatenate((self._beta, np.full(grow, self.prior[1])))

    def posterior(self, items: IntArray) -> tuple[FloatArray, FloatArray]:
        """The Beta posterior (alpha, beta) of each of `items`."""
        with self._lock:
            return self._alpha[items].copy(), self._beta[items].copy()

    def update(self, items: IntArray, rewards: FloatArray, features: FloatArray | None = None) -> None:
        r = np.clip(np.asarray(rewards, dtype=np.float64), 0.0, 1.0)
        with self._lock:
            np.add.at(self._alpha, items, r)
            np.add.at(self._beta, items, 1.0 - r)


class LinUCB(_SlotFiller):
    """Shared-parameter LinUCB over item features; `alpha` scales the confidence bonus."""

    name = "linucb"

    def __init__(self, dim: int, *, alpha: float = 1.0, ridge: float = 1.0, epsilon_floor: float = 0.02) -> None:
        if not 0.0 < epsilon_floor < 1.0:
            raise ValueError(f"epsilon_floor must be within (0, 1), got {epsilon_floor}")
        self.alpha = alpha
        self.epsilon_floor = epsilon_floor
        self._a_inv = np.eye(dim) / ridge
        self._b = np.zeros(dim)
        self._lock = threading.Lock()

    def _choose(
        self, request: SlateRequest, position: int, available: BoolArray, rng: np.random.Generator
    ) -> tuple[int, float, float]:
        if request.features is None:
            raise ValueError("LinUCB needs item features in the request")
        candidates = np.flatnonzero(available)
        if len(candidates) == 0:
            return -1, 1.0, 0.0
        kept = int(request.slate[position])
        ids = np.concatenate(([kept], request.pool[candidates]))
        x = request.features[ids]
        with self._lock:
            theta = self._a_inv @ self._b
            bonus = np.sqrt(np.einsum("ij,jk,ik->i", x, self._a_inv, x))
        ucb = x @ theta + self.alpha * bonus
        greedy = int(np.argmax(ucb))
        uniform = self.epsilon_floor / len(ids)
        pick = int(rng.integers(len(ids))) if rng.random() < self.epsilon_floor else greedy
        p_keep = (1.0 - self.epsilon_floor) * (greedy == 0) + uniform
        if pick == 0:
            return -1, p_keep, 0.0
        return int(candidates[pick - 1]), p_keep, (1.0 - self.epsilon_floor) * (greedy == pick) + uniform

    def theta(self) -> FloatArray:
        """The current reward model's coefficients (ridge estimate)."""
        with self._lock:
            return self._a_inv @ self._b

    def update(self, items: IntArray, rewards: FloatArray, features: FloatArray | None = None) -> None:
        if features is None:
            raise ValueError("LinUCB needs the shown items' features to learn")
        x = np.asarray(features, dtype=np.float64)[items]
        r = np.asarray(rewards, dtype=np.float64)
        with self._lock:
            for row, reward in zip(x, r, strict=True):  # Sherman-Morrison rank-one updates
                ax = self._a_inv @ row
                self._a_inv -= np.outer(ax, ax) / (1.0 + row @ ax)
                self._b += reward * row
