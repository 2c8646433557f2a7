"""An always-valid confidence sequence for a difference of two means.

Why not a t-test: guardrails are checked after every batch of sessions, and a fixed-sample
test checked continuously rejects a true null far more often than its nominal level. The
mixture sequential probability ratio test (mSPRT; Robbins 1970, Johari et al. 2017) stays
valid under continuous monitoring: with the difference estimate D ~ N(theta, v), the mixture
over a N(0, tau^2) alternative of the likelihood ratio is

    Lambda = sqrt(v / (v + tau^2)) * exp(tau^2 (D - theta)^2 / (2 v (v + tau^2)))

and P(Lambda ever >= 1/alpha) <= alpha under theta. Inverting gives the confidence sequence
D ± sqrt(2 v (v + tau^2) / tau^2 * (log(1/alpha) + log((v + tau^2) / v) / 2)), which covers
theta at every time simultaneously with probability >= 1 - alpha (asymptotically, with the
plug-in variance, as in Waudby-Smith et al. 2023, "Time-uniform central limit theory").

tau is the scale of effects the test is tuned for: the boundary is tightest when the
standard error reaches about tau.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DifferenceBound", "difference_confidence_sequence", "half_width"]


@dataclass(frozen=True)
class DifferenceBound:
    estimate: float  # treatment mean - control mean
    low: float
    high: float
    variance: float  # v, the plug-in variance of the estimate


def half_width(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the (1 - alpha) mixture confidence sequence at plug-in variance ``variance``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    if variance <= 0:
        return 0.0
    t2 = tau * tau
    return math.sqrt(2 * variance * (variance + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((variance + t2) / variance)))


def difference_confidence_sequence(mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int,
                                   *, tau: float, alpha: float) -> DifferenceBound | None:
    """The bound for mean_t - mean_c, or None while either arm has fewer than 2 observations."""
    if n_t < 2 or n_c < 2:
        return None
    v = var_t / n_t + var_c / n_c
    d = mean_t - mean_c
    h = half_width(v, tau, alpha)
    return DifferenceBound(estimate=d, low=d - h, high=d + h, variance=v)
