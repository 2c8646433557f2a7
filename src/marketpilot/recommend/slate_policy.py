"""What happens to a ranked list before it becomes a slate: exposure fairness, then exploration.

The ranker (or the fallback) returns `k + pool` candidates, best first. :class:`SlatePolicy`

1. labels each candidate with its exposure groups (:class:`ExposureGroups`: cold-start
   listings, i.e. created less than `cold_start_days` ago, and any audit buckets given as
   category prefixes);
2. if fairness is configured, re-ranks the candidates so groups behind their exposure target
   are lifted, giving up at most `max_relevance_loss` of the request's DCG
   (:mod:`.fairness`); the top `k` form the slate and the rest the exploration pool;
3. if exploration is configured, lets the bandit policy replace slots with pool items within
   the per-class daily budget (:mod:`.bandits`), and returns each served item's propensity.

Exploration is priced in expected GMV per impression: the listing's price times the ranker's
min-max normalised score times `purchase_rate`, a deliberately simple proxy (the ranker is not
a calibrated purchase model); the budget's GMV cap is in the same units.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from marketpilot.recommend.availability import ListingUniverse
from marketpilot.recommend.bandits import (
    EpsilonGreedy,
    ExplorationBudget,
    ExplorationPolicy,
    LinUCB,
    PerSessionClass,
    SlateRequest,
    ThompsonSampling,
)
from marketpilot.recommend.fairness import FairnessPolicy, FairReranker

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

COLD_START = "cold_start"
SMALL_SELLER = "small_seller"
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class ExposureGroups:
    """Groups a listing can belong to: `cold_start`, `small_seller` (its seller has at most
    `small_seller_max_listings` listings in the catalogue) and one bucket per category prefix."""

    cold_start_days: float = 7.0
    buckets: tuple[str, ...] = ()  # category prefixes, e.g. ("fashion/", "local-crafts/")
    small_seller_max_listings: int = 20

    @property
    def names(self) -> tuple[str, ...]:
        return (COLD_START, SMALL_SELLER, *(f"category:{p}" for p in self.buckets))

    def membership(self, universe: ListingUniverse, items: IntArray, now: float) -> BoolArray:
        out = np.zeros((len(items), len(self.names)), dtype=bool)
        if len(items) == 0:
            return out
        created = universe.array("created")[items]
        out[:, 0] = (created > 0) & (now - created < self.cold_start_days * DAY)
        sizes = universe.seller_listings(items)
        out[:, 1] = (sizes > 0) & (sizes <= self.small_seller_max_listings)
        if self.buckets:
            codes = universe.array("category")[items]
            for j, prefix in enumerate(self.buckets, start=2):
                out[:, j] = np.isin(codes, universe.category_codes(prefix))
        return out


CATEGORY_BUCKETS = 8
LISTING_FEATURES = 4 + CATEGORY_BUCKETS
MAX_AGE_DAYS = 60.0


def listing_features(universe: ListingUniverse, items: IntArray, now: float) -> FloatArray:
    """The item features LinUCB explores on, from what the request path knows of a listing:
    a bias, log price, age (capped at 60 days), whether it is cold-start (< 7 days), and its
    category hashed into 8 buckets. Non-personal, so they are safe to log and explain."""
    price = universe.array("price")[items].astype(np.float64)
    created = universe.array("created")[items]
    age = np.where(created > 0, np.clip((now - created) / DAY, 0.0, MAX_AGE_DAYS), MAX_AGE_DAYS)
    x = np.zeros((len(items), LISTING_FEATURES))
    x[:, 0] = 1.0
    x[:, 1] = np.log1p(np.maximum(price, 0.0)) / 10.0
    x[:, 2] = age / MAX_AGE_DAYS
    x[:, 3] = age < 7.0
    x[np.arange(len(items)), 4 + universe.array("category")[items] % CATEGORY_BUCKETS] = 1.0
    return x


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    items: IntArray
    scores: FloatArray
    propensities: FloatArray
    explored: BoolArray
    relevance_given_up: float
    expected_gmv_given_up: float
    session_class: str
    features: FloatArray | None = None  # rows of `items`, when the policy learns on features


@dataclass
class SlatePolicy:
    groups: ExposureGroups = field(default_factory=ExposureGroups)
    fairness: FairnessPolicy | None = None
    exploration: ExplorationPolicy | None = None
    budget: ExplorationBudget = field(default_factory=ExplorationBudget)
    pool: int = 20
    purchase_rate: float = 0.01
    seed: int | None = None
    _reranker: FairReranker | None = field(default=None, init=False, repr=False)
    _fair_columns: list[int] = field(default_factory=list, init=False, repr=False)
    _rng: threading.local = field(default_factory=threading.local, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.fairness is not None:
            unknown = set(self.fairness.groups) - set(self.groups.names)
            if unknown:
                raise ValueError(f"fairness targets name unknown groups {sorted(unknown)}; known: {self.groups.names}")
            self._reranker = FairReranker(self.fairness)
            self._fair_columns = [self.groups.names.index(g) for g in self.fairness.groups]

    @property
    def active(self) -> bool:
        return self.fairness is not None or self.exploration is not None

    def candidates_for(self, k: int) -> int:
        """How many ranked candidates to ask the model for a slate of `k`."""
        return k + self.pool if self.active else k

    def audit(self) -> list[dict[str, float | str | bool]]:
        return [] if self._reranker is None else self._reranker.audit()

    def apply(
        self,
        universe: ListingUniverse,
        items: IntArray,
        scores: npt.ArrayLike,
        k: int,
        *,
        session_class: str,
        now: float,
    ) -> PolicyOutcome:
        s = np.asarray(scores, dtype=np.float64)
        n = len(items)
        relevance_loss = 0.0
        if self._reranker is not None and n:
            membership = self.groups.membership(universe, items, now)[:, self._fair_columns]
            order, relevance_loss = self._reranker.apply(s, membership, k)
        else:
            order = np.arange(min(k, n), dtype=np.int64)
        rest = np.setdiff1d(np.arange(n, dtype=np.int64), order, assume_unique=True)[: self.pool]
        propensities = np.ones(len(order), dtype=np.float64)
        explored = np.zeros(len(order), dtype=bool)
        gmv_loss = 0.0
        chosen = self._policy_for(session_class)
        if isinstance(chosen, ThompsonSampling):
            chosen.resize(universe.n)  # posteriors for listings added since
        features = listing_features(universe, items, now) if isinstance(chosen, LinUCB) else None
        if chosen is not None and len(order) > 1 and len(rest):
            spread = float(s.max() - s.min()) if n else 0.0
            normalised = (s - s.min()) / spread if spread > 0 else np.ones(n)
            values = universe.array("price")[items].astype(np.float64) * normalised * self.purchase_rate
            out = chosen.explore(
                SlateRequest(session_class, order, rest, values, features=features, keys=items),
                self.budget, self._generator(),
            )
            order, propensities, explored, gmv_loss = out.items, out.propensities, out.explored, out.expected_gmv_given_up
        return PolicyOutcome(items[order], s[order], propensities, explored, relevance_loss, gmv_loss, session_class,
                             None if features is None else features[order])

    def _policy_for(self, session_class: str) -> ExplorationPolicy | None:
        if isinstance(self.exploration, PerSessionClass):
            return self.exploration.policy_for(session_class)
        return self.exploration

    def learn(self, session_class: str, items: IntArray, rewards: FloatArray, features: FloatArray | None = None) -> None:
        """Slot-level rewards of one closed slate (slate_feedback.py): `items` are catalogue
        indices, `features` their rows as :meth:`apply` returned them (LinUCB)."""
        chosen = self._policy_for(session_class)
        if chosen is None:
            return
        if isinstance(chosen, LinUCB):
            if features is not None:
                chosen.update(np.arange(len(items)), rewards, features)
            return
        chosen.update(items, rewards)

    def _generator(self) -> np.random.Generator:
        rng = getattr(self._rng, "rng", None)
        if rng is None:
            rng = self._rng.rng = np.random.default_rng(self.seed)
        return rng


def session_class(user_id: str | None, device: str | None) -> str:
    """Exploration budgets are kept per (new or returning buyer) x device."""
    return f"{'returning' if user_id else 'new'}/{device or 'unknown'}"


def default_policy(
    exploration: str,
    *,
    epsilon: float,
    max_explored_share: float,
    max_gmv_loss_per_day: float,
    cold_start_share: float,
    max_relevance_loss: float,
    buckets: Sequence[str] = (),
    small_seller_share: float = 0.0,
    small_seller_max_listings: int = 20,
) -> SlatePolicy | None:
    """The slate policy the settings describe (None when both parts are off)."""
    from marketpilot.recommend.bandits import BudgetLimits
    from marketpilot.recommend.fairness import ExposureTarget

    policy: ExplorationPolicy | None
    if exploration == "off":
        policy = None
    elif exploration == "epsilon_greedy":
        policy = EpsilonGreedy(epsilon)
    elif exploration == "thompson":  # posteriors per session class, sized to the catalogue on first use
        policy = PerSessionClass(lambda: ThompsonSampling(0))
    elif exploration == "linucb":  # on listing_features, one model per session class
        policy = PerSessionClass(lambda: LinUCB(LISTING_FEATURES))
    else:
        raise ValueError(f"unknown exploration policy {exploration!r}: off, epsilon_greedy, thompson or linucb")
    targets = tuple(ExposureTarget(group, share)
                    for group, share in ((COLD_START, cold_start_share), (SMALL_SELLER, small_seller_share))
                    if share > 0)
    fairness = FairnessPolicy(targets, max_relevance_loss=max_relevance_loss) if targets else None
    if policy is None and fairness is None:
        return None
    return SlatePolicy(
        groups=ExposureGroups(buckets=tuple(buckets), small_seller_max_listings=small_seller_max_listings),
        fairness=fairness,
        exploration=policy,
        budget=ExplorationBudget(default=BudgetLimits(max_explored_share, max_gmv_loss_per_day)),
    )
