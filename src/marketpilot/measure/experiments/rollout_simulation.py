"""Seeded simulation of a guarded rollout on session GMV streams.

Data-generating process (documented in docs/measurement.md):
- sessions arrive in batches; each is in a treatment arm with the ramp's current share, else
  in control; its (GMV, clicked) is drawn with replacement from a pool of simulator sessions
  (:mod:`marketpilot.measure.simulated_sessions`), so GMV per session has the simulator's
  conversion rate and heavy tail;
- a true relative GMV effect ``effect`` acts on treatment sessions: for effect < 0 each
  buying session loses its purchase with probability -effect (fewer conversions, the way a
  worse ranking loses GMV); for effect > 0 its GMV is scaled by 1 + effect. Either way the
  expected GMV per session is exactly (1 + effect) × control's;
- after every batch the guardrails are evaluated (the same code the service runs) and the
  arm is halted on the first breach; otherwise the ramp advances when its stage is full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketpilot.measure.experiments.arm_stats import ArmStats
from marketpilot.measure.experiments.guardrails import GuardrailConfig, evaluate_guardrails
from marketpilot.measure.experiments.ramp import RampSchedule

__all__ = ["RolloutOutcome", "simulate_rollout"]


@dataclass(frozen=True)
class RolloutOutcome:
    halted: bool
    sessions_at_halt: int | None  # total sessions (all arms) when halted
    treatment_sessions: int  # sessions the treatment arm received in all
    final_stage: int
    breached: tuple[str, ...]


def simulate_rollout(gmv_pool: np.ndarray, clicked_pool: np.ndarray, *, effect: float, schedule: RampSchedule,
                     guardrails: GuardrailConfig, seed: int, batch: int = 10_000) -> RolloutOutcome:
    if effect <= -1:
        raise ValueError("effect must exceed -1")
    if gmv_pool.shape != clicked_pool.shape or gmv_pool.size == 0:
        raise ValueError("gmv_pool and clicked_pool must be equal-length, non-empty arrays")
    rng = np.random.default_rng(seed)
    control, treatment = ArmStats(), ArmStats()
    stage, stage_sessions, total = 0, 0, 0
    while total < schedule.horizon_sessions:
        n = min(batch, schedule.horizon_sessions - total)
        n_t = int(rng.binomial(n, schedule.share(stage)))
        idx = rng.integers(0, gmv_pool.size, size=n)
        gmv, clicked = gmv_pool[idx], clicked_pool[idx]
        g_t = gmv[:n_t]
        if effect < 0:
            g_t = np.where(rng.random(n_t) < -effect, 0.0, g_t)
        elif effect > 0:
            g_t = g_t * (1 + effect)
        treatment.add_sessions(g_t, clicked[:n_t])
        control.add_sessions(gmv[n_t:], clicked[n_t:])
        total += n
        stage_sessions += n
        results = evaluate_guardrails(treatment, control, guardrails)
        breached = tuple(r.name for r in results if r.status == "breach")
        if breached:
            return RolloutOutcome(True, total, treatment.sessions, stage, breached)
        if schedule.can_advance(stage, stage_sessions):
            stage, stage_sessions = stage + 1, 0
    return RolloutOutcome(False, None, treatment.sessions, stage, ())
