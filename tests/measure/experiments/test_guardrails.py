"""Guardrail verdicts from arm statistics."""

from __future__ import annotations

import numpy as np
import pytest

from marketpilot.measure.experiments.arm_stats import ArmStats, latency_quantile
from marketpilot.measure.experiments.guardrails import GuardrailConfig, evaluate_guardrails

CONFIG = GuardrailConfig(min_sessions=100, min_requests=100)


def stats(rng: np.random.Generator, n: int, conversion: float, click: float = 0.3, error: float = 0.0,
          latency_scale: float = 2.0) -> ArmStats:
    s = ArmStats()
    s.add_sessions(np.where(rng.random(n) < conversion, 50.0, 0.0), rng.random(n) < click)
    s.add_requests(rng.gamma(4, latency_scale, n), rng.random(n) < error)
    return s


def verdicts(arm: ArmStats, control: ArmStats, config: GuardrailConfig = CONFIG) -> dict[str, str]:
    return {r.name: r.status for r in evaluate_guardrails(arm, control, config)}


def test_equal_arms_pass_every_guardrail() -> None:
    rng = np.random.default_rng(0)
    assert set(verdicts(stats(rng, 5_000, 0.1), stats(rng, 5_000, 0.1)).values()) == {"ok"}


@pytest.mark.parametrize(("arm_kw", "breached"), [
    ({"conversion": 0.05}, "gmv_per_session"),
    ({"conversion": 0.1, "click": 0.2}, "click_through"),
    ({"conversion": 0.1, "error": 0.05}, "error_rate"),
    ({"conversion": 0.1, "latency_scale": 4.0}, "latency_p95"),
])
def test_each_guardrail_breaches_on_its_own_harm(arm_kw: dict[str, float], breached: str) -> None:
    rng = np.random.default_rng(1)
    v = verdicts(stats(rng, 5_000, **arm_kw), stats(rng, 5_000, 0.1))
    assert {k for k, s in v.items() if s == "breach"} == {breached}


def test_a_better_arm_never_breaches() -> None:
    rng = np.random.default_rng(2)
    v = verdicts(stats(rng, 5_000, 0.2, click=0.4, latency_scale=1.0), stats(rng, 5_000, 0.1))
    assert "breach" not in v.values()


def test_before_the_minimum_sample_there_is_no_verdict() -> None:
    rng = np.random.default_rng(3)
    assert set(verdicts(stats(rng, 50, 0.0), stats(rng, 50, 0.5)).values()) == {"insufficient"}


def test_a_tolerance_absorbs_a_small_drop() -> None:
    rng = np.random.default_rng(4)
    arm, control = stats(rng, 50_000, 0.095), stats(rng, 50_000, 0.1)
    assert verdicts(arm, control)["gmv_per_session"] == "breach"
    assert verdicts(arm, control, GuardrailConfig(min_sessions=100, min_requests=100,
                                                  gmv_tolerance=0.2))["gmv_per_session"] == "ok"


def test_arm_stats_round_trip_and_latency_quantile() -> None:
    s = ArmStats()
    s.add_sessions(np.array([0.0, 10.0, 20.0]), np.array([True, False, True]))
    s.add_requests(np.linspace(1, 100, 1_000), np.zeros(1_000, bool))
    back = ArmStats.from_json(s.to_json())
    assert back.gmv() == s.gmv() and back.click_sessions == 2
    assert np.array_equal(back.latency_hist, s.latency_hist)
    p95 = latency_quantile(s.latency_hist, 0.95)
    assert p95 is not None and 95 <= p95 <= 95 * 1.06
    assert latency_quantile(np.zeros(4, dtype=np.int64), 0.95) is None


@pytest.mark.parametrize(("kw", "message"), [
    ({"alpha": 0.0}, "alpha must lie in"),
    ({"min_sessions": 1}, "min_sessions must be at least 2"),
    ({"gmv_tau": 0.0}, "gmv_tau must be positive"),
    ({"ctr_tolerance": -0.1}, "ctr_tolerance must be non-negative"),
    ({"latency_p95_ratio": 0.5}, "latency_p95_ratio must be at least 1"),
])
def test_bad_guardrail_configs_are_refused(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GuardrailConfig(**kw)  # type: ignore[arg-type]
