"""Guardrails: the checks that halt a treatment arm, computed from the arms' outcome statistics.

Statistical guardrails (GMV per session, click-through, error rate) compare an arm with
control through an always-valid confidence sequence (:mod:`.sequential`) and breach only
when the arm is *confidently* worse than the tolerated margin; the experiment's alpha is
split evenly across them (Bonferroni), so the chance that a harmless arm is ever halted,
however often it is checked, stays below alpha. Latency p95 is a threshold rule on the
histograms (a p95 has no cheap always-valid test and a slow arm should be stopped as soon as
it is seen to be slow anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from marketpilot.measure.experiments.arm_stats import ArmStats
from marketpilot.measure.experiments.sequential import difference_confidence_sequence

__all__ = ["GuardrailConfig", "GuardrailResult", "Status", "evaluate_guardrails"]

Status = Literal["ok", "breach", "insufficient"]


@dataclass(frozen=True)
class GuardrailConfig:
    alpha: float = 0.05  # total false-halt budget of one arm, split across the statistical guardrails
    min_sessions: int = 1_000  # per arm, before any statistical verdict
    min_requests: int = 1_000  # per arm, before a latency verdict
    gmv_tolerance: float = 0.0  # relative drop in GMV/session tolerated (0.01 = halt only below -1%)
    gmv_tau: float = 0.05  # mixture scale, relative to control's GMV/session: the effect size tuned for
    ctr_tolerance: float = 0.0
    ctr_tau: float = 0.05
    error_rate_tolerance: float = 0.001  # absolute increase in error rate tolerated
    error_rate_tau: float = 0.005  # absolute
    latency_p95_ratio: float = 1.25  # arm p95 may exceed control p95 by this factor
    latency_p95_max_ms: float | None = None  # and, if set, never exceed this

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        for name in ("min_sessions", "min_requests"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2")
        for name in ("gmv_tau", "ctr_tau", "error_rate_tau"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("gmv_tolerance", "ctr_tolerance", "error_rate_tolerance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative")
        if self.latency_p95_ratio < 1:
            raise ValueError("latency_p95_ratio must be at least 1")


@dataclass(frozen=True)
class GuardrailResult:
    name: str  # gmv_per_session | click_through | error_rate | latency_p95
    status: Status
    arm_value: float | None
    control_value: float | None
    low: float | None = None  # confidence-sequence bounds of arm - control (statistical guardrails)
    high: float | None = None


N_STATISTICAL = 3


def _worse_if_lower(name: str, arm: tuple[float, float, int], control: tuple[float, float, int], *, tau_rel: float,
                    tolerance: float, alpha: float, min_n: int) -> GuardrailResult:
    if arm[2] < min_n or control[2] < min_n:
        return GuardrailResult(name, "insufficient", arm[0] if arm[2] else None, control[0] if control[2] else None)
    scale = abs(control[0]) or 1.0
    # The arm's variance is floored at control's: early in a ramp the arm has few sessions and,
    # with heavy-tailed GMV, a sample that happens to miss the big baskets understates both its
    # mean and its variance, the one combination that fakes a breach. Under "no harm" both arms
    # share one variance, so the floor costs validity nothing and little power.
    bound = difference_confidence_sequence(arm[0], max(arm[1], control[1]), arm[2],
                                           control[0], control[1], control[2], tau=tau_rel * scale, alpha=alpha)
    assert bound is not None  # min_n >= 2
    breach = bound.high < -tolerance * scale
    return GuardrailResult(name, "breach" if breach else "ok", arm[0], control[0], bound.low, bound.high)


def evaluate_guardrails(arm: ArmStats, control: ArmStats, config: GuardrailConfig) -> list[GuardrailResult]:
    """Every guardrail of one treatment arm against control."""
    alpha = config.alpha / N_STATISTICAL
    out = [
        _worse_if_lower("gmv_per_session", arm.gmv(), control.gmv(), tau_rel=config.gmv_tau,
                        tolerance=config.gmv_tolerance, alpha=alpha, min_n=config.min_sessions),
        _worse_if_lower("click_through", arm.click_through(), control.click_through(), tau_rel=config.ctr_tau,
                        tolerance=config.ctr_tolerance, alpha=alpha, min_n=config.min_sessions),
    ]
    # error rate: worse if higher, so test control - arm on the same "worse if lower" rule
    a, c = arm.error_rate(), control.error_rate()
    if a[2] < config.min_requests or c[2] < config.min_requests:
        out.append(GuardrailResult("error_rate", "insufficient", a[0] if a[2] else None, c[0] if c[2] else None))
    else:
        bound = difference_confidence_sequence(a[0], a[1], a[2], c[0], c[1], c[2], tau=config.error_rate_tau,
                                               alpha=alpha)
        assert bound is not None
        breach = bound.low > config.error_rate_tolerance
        out.append(GuardrailResult("error_rate", "breach" if breach else "ok", a[0], c[0], bound.low, bound.high))
    p_arm, p_ctl = arm.latency_p95(), control.latency_p95()
    if arm.requests < config.min_requests or control.requests < config.min_requests or p_arm is None or p_ctl is None:
        out.append(GuardrailResult("latency_p95", "insufficient", p_arm, p_ctl))
    else:
        breach = p_arm > p_ctl * config.latency_p95_ratio or (
            config.latency_p95_max_ms is not None and p_arm > config.latency_p95_max_ms)
        out.append(GuardrailResult("latency_p95", "breach" if breach else "ok", p_arm, p_ctl))
    return out
