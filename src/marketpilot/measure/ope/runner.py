"""One runner that compares any list of estimators on the same logged feedback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from marketpilot.measure.ope.base import BanditFeedback, OffPolicyEstimator

__all__ = ["EstimatorResult", "OffPolicyEvaluation"]


@dataclass(frozen=True)
class EstimatorResult:
    estimate: float
    ci_low: float
    ci_high: float
    relative_error: float | None = None  # |estimate - truth| / |truth| when a truth is known


class OffPolicyEvaluation:
    """Run every estimator on one :class:`BanditFeedback`; names must be unique."""

    def __init__(self, estimators: Sequence[OffPolicyEstimator]) -> None:
        if not estimators:
            raise ValueError("at least one estimator is needed")
        names = [e.name for e in estimators]
        if len(set(names)) != len(names):
            raise ValueError(f"estimator names must be unique, got {names}")
        self.estimators = list(estimators)

    def evaluate(self, data: BanditFeedback, *, ground_truth: float | None = None, n_bootstrap: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> dict[str, EstimatorResult]:
        if ground_truth is not None and ground_truth == 0:
            raise ValueError("ground_truth must be non-zero to compute a relative error")
        out: dict[str, EstimatorResult] = {}
        for est in self.estimators:
            ci = est.estimate_interval(data, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)
            rel = None if ground_truth is None else abs(ci.estimate - ground_truth) / abs(ground_truth)
            out[est.name] = EstimatorResult(estimate=ci.estimate, ci_low=ci.low, ci_high=ci.high, relative_error=rel)
        return out
