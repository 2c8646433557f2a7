"""Percentile bootstrap over logged rounds.

Rounds are resampled with replacement and the estimator's :class:`RoundTerms` recombined, so
self-normalised estimators renormalise inside every resample (resampling per-round *values*,
as a naive bootstrap would, understates their variance).
"""

from __future__ import annotations

import numpy as np

from marketpilot.measure.ope.base import Interval, RoundTerms

__all__ = ["bootstrap_interval"]

_CHUNK = 200  # resamples per vectorised block: bounds memory at _CHUNK × n indices


def bootstrap_interval(terms: RoundTerms, *, n_bootstrap: int = 1000, alpha: float = 0.05,
                       seed: int = 0) -> Interval:
    """Point estimate and the (alpha/2, 1 - alpha/2) percentile interval of ``n_bootstrap`` resamples."""
    if n_bootstrap < 10:
        raise ValueError(f"n_bootstrap must be at least 10, got {n_bootstrap}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    n = terms.direct.shape[0]
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, n_bootstrap, _CHUNK):
        size = min(_CHUNK, n_bootstrap - start)
        draws.append(np.asarray(terms.value(rng.integers(0, n, size=(size, n)))))
    samples = np.concatenate(draws)
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate=float(terms.value()), low=float(low), high=float(high))
