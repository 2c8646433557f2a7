"""Exposure fairness: give groups of listings (cold-start listings, small sellers, audit buckets
agreed with legal) at least a target share of position-weighted exposure, at a bounded cost in
relevance per request.

Exposure of a slot is its position weight ``1 / log2(position + 2)`` (the DCG discount: what a
buyer's attention is worth at that position). An :class:`ExposureLedger` accumulates, per group,
the exposure its listings received, with exponential decay so the account follows the recent
past (a half-life in requests). Before a slate is cut to `k`, :func:`rerank` lifts the listings
of groups that are behind their target: each candidate's normalised relevance gets a bonus
``lam * sum(deficit of its groups)``, and `lam` is the largest value (found by bisection) whose
slate keeps at least ``1 - max_loss`` of the relevance-order slate's DCG. So a request never
gives up more than `max_loss` of its relevance, and groups that are on target get no lift.

Written here rather than taken from a library: fairness toolkits (e.g. FairRecKit, the
TREC Fair Ranking code) evaluate exposure offline; none re-ranks online under a per-request
relevance bound in microseconds on arrays, which is what the request path needs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

BISECTION_STEPS = 12
MAX_LIFT = 4.0  # the bonus never outweighs four times the whole (normalised) relevance range


def position_weights(k: int) -> FloatArray:
    """Exposure of positions 0..k-1: the DCG discount ``1 / log2(p + 2)``."""
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


@dataclass(frozen=True, slots=True)
class ExposureTarget:
    """Group `group` should receive at least `share` (0..1) of all position-weighted exposure."""

    group: str
    share: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"exposure target for {self.group!r}: share must be within [0, 1], got {self.share}")


@dataclass(frozen=True, slots=True)
class FairnessPolicy:
    targets: tuple[ExposureTarget, ...]
    max_relevance_loss: float = 0.05  # share of the relevance-order slate's DCG one request may give up

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_relevance_loss < 1.0:
            raise ValueError(f"max_relevance_loss must be within [0, 1), got {self.max_relevance_loss}")
        names = [t.group for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"exposure targets name a group twice: {names}")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(t.group for t in self.targets)

    @property
    def shares(self) -> FloatArray:
        return np.array([t.share for t in self.targets], dtype=np.float64)


class ExposureLedger:
    """Decayed exposure per group, updated with every served slate (thread-safe)."""

    def __init__(self, groups: Sequence[str], *, half_life: float = 10_000.0) -> None:
        if half_life <= 0:
            raise ValueError(f"half_life must be positive, got {half_life}")
        self.groups = tuple(groups)
        self._decay = 0.5 ** (1.0 / half_life)
        self._exposure = np.zeros(len(self.groups), dtype=np.float64)
        self._total = 0.0
        self._lock = threading.Lock()

    def record(self, membership: BoolArray) -> None:
        """Account one served slate: `membership[p, g]` says whether the item at position p
        belongs to group g."""
        weights = position_weights(membership.shape[0])
        with self._lock:
            self._exposure = self._exposure * self._decay + weights @ membership
            self._total = self._total * self._decay + float(weights.sum())

    def shares(self) -> FloatArray:
        """Each group's share of the (decayed) exposure so far; zeros before any slate."""
        with self._lock:
            return self._exposure / self._total if self._total > 0 else np.zeros_like(self._exposure)

    def deficits(self, targets: FloatArray) -> FloatArray:
        """How far each group is below its target, as a fraction of the target (0 = on target)."""
        shares = self.shares()
        with np.errstate(divide="ignore", invalid="ignore"):
            short = np.where(targets > 0, (targets - shares) / targets, 0.0)
        return np.clip(short, 0.0, 1.0)


def _dcg(gains: FloatArray, order: IntArray, weights: FloatArray) -> float:
    return float(gains[order] @ weights)


def _top(values: FloatArray, k: int) -> IntArray:
    if k >= len(values):
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.argsort(-values[part], kind="stable")]


def rerank(
    scores: npt.ArrayLike,
    membership: BoolArray,
    k: int,
    deficits: FloatArray,
    max_loss: float,
) -> tuple[IntArray, float]:
    """The top-`k` positions (indices into the candidates) after lifting under-exposed groups,
    and the share of relevance-order DCG it gave up (always <= `max_loss`).

    `scores` are the ranker's scores of n candidates; `membership` is (n, groups); `deficits`
    comes from :meth:`ExposureLedger.deficits`.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    k = min(k, n)
    if n == 0 or k == 0:
        return np.empty(0, dtype=np.int64), 0.0
    spread = float(s.max() - s.min())
    gains = (s - s.min()) / spread if spread > 0 else np.ones(n)
    base = _top(s, k)
    bonus = membership.astype(np.float64) @ deficits
    if max_loss <= 0 or not bonus.any():
        return base, 0.0
    weights = position_weights(k)
    best_dcg = _dcg(gains, base, weights)
    if best_dcg <= 0:
        return base, 0.0

    def loss_at(lam: float) -> tuple[IntArray, float]:
        order = _top(gains + lam * bonus, k)
        return order, 1.0 - _dcg(gains, order, weights) / best_dcg

    order, loss = loss_at(MAX_LIFT)
    if loss <= max_loss:
        return order, max(loss, 0.0)
    low, high, chosen, chosen_loss = 0.0, MAX_LIFT, base, 0.0
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        order, loss = loss_at(mid)
        if loss <= max_loss:
            low, chosen, chosen_loss = mid, order, loss
        else:
            high = mid
    return chosen, max(chosen_loss, 0.0)


class FairReranker:
    """:func:`rerank` with a ledger: the component the recommendation service calls per slate."""

    def __init__(self, policy: FairnessPolicy, *, half_life: float = 10_000.0) -> None:
        self.policy = policy
        self.ledger = ExposureLedger(policy.groups, half_life=half_life)
        self._shares = policy.shares

    def apply(self, scores: npt.ArrayLike, membership: BoolArray, k: int) -> tuple[IntArray, float]:
        """Re-rank one request's candidates and account the exposure of the served slate."""
        order, loss = rerank(scores, membership, k, self.ledger.deficits(self._shares), self.policy.max_relevance_loss)
        self.ledger.record(membership[order])
        return order, loss

    def audit(self) -> list[dict[str, float | str | bool]]:
        """Exposure share per group against its target (the audit report's rows)."""
        shares = self.ledger.shares()
        return [
            {"group": t.group, "target": t.share, "exposure_share": float(v), "met": bool(v >= t.share)}
            for t, v in zip(self.policy.targets, shares, strict=True)
        ]
