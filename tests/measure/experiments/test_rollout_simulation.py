"""The seeded rollout simulation (the kill-switch benchmark's engine) on a small scale."""

from __future__ import annotations

import numpy as np

from marketpilot.measure.experiments.guardrails import GuardrailConfig
from marketpilot.measure.experiments.ramp import RampSchedule
from marketpilot.measure.experiments.rollout_simulation import simulate_rollout

rng = np.random.default_rng(0)
POOL_GMV = np.where(rng.random(20_000) < 0.1, rng.lognormal(3.5, 0.8, 20_000), 0.0)
POOL_CLICK = rng.random(20_000) < 0.3
SCHEDULE = RampSchedule(stages=(0.05, 0.25, 0.5), min_stage_sessions=20_000, horizon_sessions=400_000)


def test_a_strongly_harmful_arm_is_halted_early_and_a_harmless_one_runs_to_the_horizon() -> None:
    bad = [simulate_rollout(POOL_GMV, POOL_CLICK, effect=-0.3, schedule=SCHEDULE, guardrails=GuardrailConfig(),
                            seed=s) for s in range(10)]
    assert all(o.halted and o.breached == ("gmv_per_session",) for o in bad)
    fine = [simulate_rollout(POOL_GMV, POOL_CLICK, effect=0.0, schedule=SCHEDULE, guardrails=GuardrailConfig(),
                             seed=s) for s in range(10)]
    assert sum(o.halted for o in fine) <= 1
    assert all(o.final_stage == 2 for o in fine if not o.halted)


def test_runs_are_reproducible_per_seed() -> None:
    a = simulate_rollout(POOL_GMV, POOL_CLICK, effect=-0.2, schedule=SCHEDULE, guardrails=GuardrailConfig(), seed=7)
    b = simulate_rollout(POOL_GMV, POOL_CLICK, effect=-0.2, schedule=SCHEDULE, guardrails=GuardrailConfig(), seed=7)
    assert a == b


def test_ramp_schedule_rules() -> None:
    import pytest

    with pytest.raises(ValueError, match="increase strictly"):
        RampSchedule(stages=(0.1, 0.1))
    assert SCHEDULE.can_advance(0, 20_000) and not SCHEDULE.can_advance(2, 10**9)
