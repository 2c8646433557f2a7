"""The logging policy: which listings a buyer is shown, with exact propensities.

A request comes from a buyer browsing one mid-level category ("group"), chosen by the
buyer's own intent: softmax(INTENT_SHARPNESS * taste . group_mean) times the group's
seasonal demand that day, mixed with INTENT_EXPLORATION uniform browsing.

Within the group the platform shows a slate of up to EXPLOIT + EXPLORE listings:
* EXPLOIT distinct listings drawn uniformly from the group's top `popular_count` by
  `policy_score` (a non-personalised quality guess: noisy true quality);
* EXPLORE distinct listings drawn uniformly from the rest of the group;
then shuffled uniformly over positions. Hence, given the group, a listing's probability of
being at a given position is exactly (k_exploit / popular_count) / k or
(k_explore / (n - popular_count)) / k - logged as `propensity` in the ground-truth
impressions, so off-policy estimators (IPS, DR) can be checked against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketpilot.simulate.categories import Catalogue
from marketpilot.simulate.listings import Listings

EXPLOIT = 4
EXPLORE = 2
POPULAR_SHARE = 0.1
INTENT_SHARPNESS = 3.0
INTENT_EXPLORATION = 0.1


def parameters() -> dict[str, float]:
    return {"exploit_slots": EXPLOIT, "explore_slots": EXPLORE, "popular_share": POPULAR_SHARE,
            "intent_sharpness": INTENT_SHARPNESS, "intent_exploration": INTENT_EXPLORATION}


@dataclass(frozen=True)
class LoggingPolicy:
    order: np.ndarray  # shown listings sorted by (group, -policy_score)
    group_lo: np.ndarray  # (G,) start of each group in `order`
    group_n: np.ndarray  # (G,) listings in the group
    popular_n: np.ndarray  # (G,) size of the exploit pool
    group_mean: np.ndarray  # (G, K) mean factor of the group's listings (what intent looks at)
    group_leaf_weight: np.ndarray  # (G, L) share of each leaf in the group (for seasonality)

    @property
    def available(self) -> np.ndarray:
        return self.group_n > 0

    def slate_sizes(self, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(exploit, explore) slate slots actually filled in `group`."""
        k1 = np.minimum(EXPLOIT, self.popular_n[group])
        k2 = np.minimum(EXPLORE, self.group_n[group] - self.popular_n[group])
        return k1, k2

    def intent(self, taste: np.ndarray, log_season: np.ndarray) -> np.ndarray:
        """(R, G) probability that a request of each user row browses each group."""
        logits = INTENT_SHARPNESS * (taste @ self.group_mean.T) + log_season[None, :]
        logits[:, ~self.available] = -np.inf
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        uniform = self.available / self.available.sum()
        return (1 - INTENT_EXPLORATION) * p + INTENT_EXPLORATION * uniform[None, :]

    def group_log_season(self, catalogue: Catalogue, epoch_day: int) -> np.ndarray:
        leaves = np.arange(catalogue.n_leaves)
        shift = np.exp(catalogue.log_demand_shift(leaves, np.full(len(leaves), epoch_day)))
        return np.log(np.maximum(self.group_leaf_weight @ shift, 1e-12))

    def slates(self, rng: np.random.Generator, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(listing, propensity) per request x position, -1 / 0 where the slate is shorter."""
        k1, k2 = self.slate_sizes(group)
        lo, n, m = self.group_lo[group], self.group_n[group], self.popular_n[group]
        exploit = sample_distinct(rng, m, EXPLOIT)
        explore = sample_distinct(rng, n - m, EXPLORE)
        picked = np.concatenate([np.where(exploit >= 0, lo[:, None] + exploit, -1),
                                 np.where(explore >= 0, (lo + m)[:, None] + explore, -1)], axis=1)
        k = (k1 + k2).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            p1 = np.where(m > 0, k1 / np.maximum(m, 1), 0.0) / np.maximum(k, 1)
            p2 = np.where(n - m > 0, k2 / np.maximum(n - m, 1), 0.0) / np.maximum(k, 1)
        prop = np.concatenate([np.repeat(p1[:, None], EXPLOIT, 1), np.repeat(p2[:, None], EXPLORE, 1)], axis=1)
        # shuffle the filled slots over the first k positions, keep the empty ones at the end
        keys = rng.random(picked.shape) + np.where(picked >= 0, 0.0, 2.0)
        perm = np.argsort(keys, axis=1, kind="stable")
        picked = np.take_along_axis(picked, perm, axis=1)
        prop = np.take_along_axis(prop, perm, axis=1)
        listing = np.where(picked >= 0, self.order[np.maximum(picked, 0)], -1)
        return listing, np.where(picked >= 0, prop, 0.0)


def sample_distinct(rng: np.random.Generator, n: np.ndarray, k: int) -> np.ndarray:
    """Per row, min(k, n) distinct uniform draws from range(n) (Floyd's algorithm), -1 padded."""
    n = np.asarray(n, dtype=np.int64)
    rows = len(n)
    k_eff = np.minimum(k, n)
    out = np.full((rows, k), -1, dtype=np.int64)
    for j in range(k):
        valid = j < k_eff
        upper = n - k_eff + j  # Floyd: draw t in [0, upper], take upper itself if t was taken
        t = np.floor(rng.random(rows) * (upper + 1)).astype(np.int64)
        taken = (out[:, :j] == t[:, None]).any(axis=1)
        out[:, j] = np.where(valid, np.where(taken, upper, t), -1)
    return out


def build_policy(catalogue: Catalogue, listings: Listings) -> LoggingPolicy:
    shown = np.flatnonzero(listings.shown)
    group = catalogue.leaf_mid[listings.leaf[shown]]
    order_in = np.lexsort((shown, -listings.policy_score[shown], group))
    order = shown[order_in]
    n_groups = len(catalogue.mids)
    counts = np.bincount(group, minlength=n_groups)
    lo = np.concatenate([[0], np.cumsum(counts)[:-1]])
    popular = np.where(counts > 0, np.minimum(counts, np.maximum(np.minimum(EXPLOIT, counts),
                                                                 np.ceil(POPULAR_SHARE * counts))), 0)
    k = listings.factors.shape[1]
    sums = np.stack([np.bincount(group, weights=listings.factors[shown, d], minlength=n_groups)
                     for d in range(k)], axis=1)
    mean = sums / np.maximum(counts, 1)[:, None]
    leaf_weight = np.zeros((n_groups, catalogue.n_leaves))
    for g in range(n_groups):
        members = catalogue.leaf_mid == g
        leaf_weight[g, members] = catalogue.leaf_share[members] / catalogue.leaf_share[members].sum()
    return LoggingPolicy(order=order, group_lo=lo.astype(np.int64), group_n=counts.astype(np.int64),
                         popular_n=popular.astype(np.int64), group_mean=mean, group_leaf_weight=leaf_weight)
