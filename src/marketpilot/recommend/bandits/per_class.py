"""One exploration policy per session class, so that what new mobile buyers reward does not
steer what returning desktop buyers are shown. Policies are made on first use of a class."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from marketpilot.recommend.bandits.budget import ExplorationBudget
from marketpilot.recommend.bandits.policies import (
    ExplorationPolicy,
    ExploredSlate,
    FloatArray,
    IntArray,
    SlateRequest,
)


class PerSessionClass:
    def __init__(self, factory: Callable[[], ExplorationPolicy]) -> None:
        self.factory = factory
        self.name = factory().name
        self._policies: dict[str, ExplorationPolicy] = {}
        self._lock = threading.Lock()

    def policy_for(self, session_class: str) -> ExplorationPolicy:
        policy = self._policies.get(session_class)
        if policy is None:
            with self._lock:
                policy = self._policies.setdefault(session_class, self.factory())
        return policy

    def explore(self, request: SlateRequest, budget: ExplorationBudget, rng: np.random.Generator) -> ExploredSlate:
        return self.policy_for(request.session_class).explore(request, budget, rng)

    def update(self, items: IntArray, rewards: FloatArray, features: FloatArray | None = None) -> None:
        raise TypeError("rewards belong to one session class: update policy_for(session_class)")
