"""Difference-in-differences on a region × day GMV panel, with a confidence interval.

Each region r contributes y_r = log(mean daily GMV after the start) - log(mean daily GMV
before): logs make regions of very different size comparable and turn a multiplicative
uplift into an additive one. The estimate is delta = mean_treated(y) - mean_control(y);
common shocks (season, weekday, a marketing push everywhere) cancel in the pre/post
difference, region size cancels in the log. Regions are the independent units, so the
interval is Welch's t on the two groups' y (few regions: t, not normal, quantiles).

relative uplift = exp(delta) - 1; incremental GMV = treated post GMV × u / (1 + u), the
observed treated GMV minus its counterfactual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["DiDEstimate", "did_estimate"]


@dataclass(frozen=True)
class DiDEstimate:
    relative_uplift: float
    relative_low: float
    relative_high: float
    incremental_gmv: float
    incremental_low: float
    incremental_high: float
    treated_regions: int
    control_regions: int


def _welch(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float, float]:
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    d = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return d, d - q * se, d + q * se


def did_estimate(panel: np.ndarray, treated: np.ndarray, post_start: int, *, alpha: float = 0.05) -> DiDEstimate:
    """``panel``: (R, D) GMV per region and day; days >= ``post_start`` are after the change."""
    panel = np.asarray(panel, dtype=np.float64)
    treated = np.asarray(treated, dtype=bool)
    if panel.ndim != 2 or treated.shape != (panel.shape[0],):
        raise ValueError("panel must be (regions, days) and treated one flag per region")
    if not 0 < post_start < panel.shape[1]:
        raise ValueError(f"post_start must lie in (0, {panel.shape[1]}), got {post_start}")
    if treated.sum() < 2 or (~treated).sum() < 2:
        raise ValueError("need at least 2 treated and 2 control regions")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    pre, post = panel[:, :post_start].mean(axis=1), panel[:, post_start:].mean(axis=1)
    if np.any(pre <= 0) or np.any(post <= 0):
        raise ValueError("every region needs positive GMV before and after the start")
    y = np.log(post) - np.log(pre)
    d, lo, hi = _welch(y[treated], y[~treated], alpha)
    treated_post = float(panel[treated, post_start:].sum())

    def incremental(delta: float) -> float:
        u = math.expm1(delta)
        return treated_post * u / (1 + u)

    return DiDEstimate(relative_uplift=math.expm1(d), relative_low=math.expm1(lo), relative_high=math.expm1(hi),
                       incremental_gmv=incremental(d), incremental_low=incremental(lo),
                       incremental_high=incremental(hi), treated_regions=int(treated.sum()),
                       control_regions=int((~treated).sum()))
