"""The verdict on one closed window: thresholds, per-feature statistics and the decision rule.

Decision rule (documented in docs/monitoring.md, defaults in :class:`DriftThresholds`):

1. A window with fewer than ``min_count`` events is ``insufficient``: no verdict. PSI alone
   has a null expectation of about ``(bins - 1) / n``, so on small windows it is noise.
2. Each column (every feature and the prediction) gets PSI over its reference bins and a
   p-value: two-sample KS for numeric columns, two-sample chi-square for categorical ones.
3. The p-values of the window are adjusted together (Holm by default), so the probability
   that a drift-free window raises any alarm stays at most ``alpha`` however many features
   the model has.
4. A column drifted if ``psi > psi`` threshold **or** ``p_adjusted <= alpha``; the window is
   ``drift`` if any column drifted, else ``ok``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias

import msgspec
import numpy as np

from marketpilot.platform.monitoring.drift_reference import FeatureReference, Kind
from marketpilot.platform.monitoring.drift_stats import Correction, KsMethod, adjust, chi2_test, ks_test, psi
from marketpilot.platform.monitoring.drift_windows import ClosedWindow

Verdict: TypeAlias = Literal["drift", "ok", "insufficient"]
Test: TypeAlias = Literal["ks", "chi2"]
VERDICTS: tuple[Verdict, ...] = ("drift", "ok", "insufficient")


class DriftThresholds(msgspec.Struct, frozen=True, kw_only=True):
    """When a window counts as drifted.

    `alpha` is per window and family-wise: at the default 0.01 and 5-minute windows, a
    drift-free model raises about three false alarms a day; lower it for short windows.
    """

    psi: float = 0.2
    alpha: float = 0.01
    correction: Correction = "holm"
    min_count: int = 200
    ks_method: KsMethod = "asymp"

    def __post_init__(self) -> None:
        if not self.psi > 0:
            raise ValueError(f"psi threshold: must be positive, got {self.psi}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha: must be in (0, 1), got {self.alpha}")
        if self.correction not in ("holm", "bonferroni"):
            raise ValueError(f"correction: must be 'holm' or 'bonferroni', got {self.correction!r}")
        if self.min_count < 1:
            raise ValueError(f"min_count: must be at least 1, got {self.min_count}")
        if self.ks_method not in ("asymp", "exact", "auto"):
            raise ValueError(f"ks_method: must be 'asymp', 'exact' or 'auto', got {self.ks_method!r}")


class FeatureDrift(msgspec.Struct, frozen=True, kw_only=True):
    """One column of one window. `test` is ``"ks"`` (numeric) or ``"chi2"`` (categorical);
    `p_adjusted` is the family-wise adjusted p-value the rule compares with alpha."""

    name: str
    kind: Kind
    psi: float
    test: Test
    statistic: float
    p_value: float
    p_adjusted: float
    missing_rate: float
    drifted: bool


class DriftReport(msgspec.Struct, frozen=True, kw_only=True):
    """The drift report of one model over one window; `id` is set once it is stored."""

    model: str
    model_version: str | None
    instance: str
    window_start: datetime
    window_end: datetime
    observations: int
    sampled: int
    late: int
    verdict: Verdict
    features: tuple[FeatureDrift, ...]
    thresholds: DriftThresholds
    id: int | None = None

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)


def _column_stats(
    ref: FeatureReference, values: np.ndarray, ks_method: KsMethod
) -> tuple[float, Test, float, float, float]:
    counts = ref.bin_counts(values)
    n = values.size
    value_psi = psi(ref.proportions, counts / n) if n else 0.0
    missing = float(counts[-1] / n) if n else 0.0
    if ref.kind == "numeric":
        statistic, p = ks_test(ref.sample, values[~np.isnan(values)], method=ks_method)
        return value_psi, "ks", statistic, p, missing
    statistic, p = chi2_test(ref.counts, counts)
    return value_psi, "chi2", statistic, p, missing


def evaluate(window: ClosedWindow, thresholds: DriftThresholds, *, instance: str = "default") -> DriftReport:
    """Compare a closed window with its model's reference and decide (see the module docstring)."""
    columns = window.reference.columns
    raw = [_column_stats(ref, window.values[:, j], thresholds.ks_method) for j, ref in enumerate(columns)]
    sufficient = window.sampled >= thresholds.min_count
    p_adjusted = adjust(np.array([r[3] for r in raw]), thresholds.correction)
    features = tuple(
        FeatureDrift(
            name=ref.name,
            kind=ref.kind,
            psi=value_psi,
            test=test,
            statistic=statistic,
            p_value=p,
            p_adjusted=float(p_adj),
            missing_rate=missing,
            drifted=bool(sufficient and (value_psi > thresholds.psi or p_adj <= thresholds.alpha)),
        )
        for ref, (value_psi, test, statistic, p, missing), p_adj in zip(columns, raw, p_adjusted, strict=True)
    )
    verdict: Verdict = "insufficient" if not sufficient else ("drift" if any(f.drifted for f in features) else "ok")
    return DriftReport(
        model=window.model,
        model_version=window.model_version,
        instance=instance,
        window_start=window.start,
        window_end=window.end,
        observations=window.observed,
        sampled=window.sampled,
        late=window.late,
        verdict=verdict,
        features=features,
        thresholds=thresholds,
    )
