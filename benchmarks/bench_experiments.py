"""The kill switch on seeded session-GMV streams: halts a harmful arm, spares a harmless one.

    .venv/bin/python -m benchmarks.bench_experiments [--runs 200] [--horizon 3000000]

Data: per-session (GMV, clicked) of a simulator run (``marketpilot.simulate``: 2,000
listings, 20,000 buyers, 28 days, seed 0; written to --sim-dir, reused when present),
re-drawn with replacement; the data-generating process and the ramp are those of
``marketpilot.measure.experiments.rollout_simulation`` (1% → 5% → 25% → 50%, 100,000 sessions
per stage, then 50% until the horizon). Guardrails: the defaults of ``GuardrailConfig``
(alpha 0.05 over GMV/session, click-through and error rate; only the first two see data).

Prints one JSON object:

- ``harmful`` (true GMV effect -5%): share of runs halted within the horizon (target >= 0.95),
  median total and treatment sessions at the halt;
- ``harmless`` (effect 0): share of runs halted (target <= 0.05);
- ``anchor_naive_peeking``: the same harmless streams judged by a fixed-sample 95% z-test on
  GMV/session after every batch (what a dashboard does): its false-halt share shows why the
  sequential test is needed;
- ``ms_per_run``: median wall time of one harmful run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from marketpilot.measure.experiments.guardrails import GuardrailConfig
from marketpilot.measure.experiments.ramp import RampSchedule
from marketpilot.measure.experiments.rollout_simulation import simulate_rollout
from marketpilot.measure.simulated_sessions import simulate_sessions


def naive_peeking_halts(gmv: np.ndarray, runs: int, horizon: int, batch: int, share: float) -> float:
    """Share of harmless runs a z-test (|z| > 1.96, checked every batch, 50/50 split) would halt."""
    halts = 0
    for seed in range(runs):
        rng = np.random.default_rng(10_000 + seed)
        sums = np.zeros(2)
        sq = np.zeros(2)
        ns = np.zeros(2)
        for _ in range(horizon // batch):
            g = gmv[rng.integers(0, gmv.size, batch)]
            t = rng.random(batch) < share
            for arm, mask in ((0, ~t), (1, t)):
                sums[arm] += g[mask].sum()
                sq[arm] += np.square(g[mask]).sum()
                ns[arm] += mask.sum()
            means = sums / ns
            var = sq / ns - means**2
            z = (means[1] - means[0]) / np.sqrt(var[1] / ns[1] + var[0] / ns[0])
            if z < -1.96:
                halts += 1
                break
    return halts / runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--horizon", type=int, default=3_000_000)
    parser.add_argument("--sim-dir", type=Path, default=Path(".marketpilot/bench/sim-20k-28d"))
    args = parser.parse_args()
    sessions = simulate_sessions(args.sim_dir, listings=2_000, users=20_000, days=28, seed=0)
    schedule = RampSchedule(stages=(0.01, 0.05, 0.25, 0.5), min_stage_sessions=100_000,
                            horizon_sessions=args.horizon)
    guardrails = GuardrailConfig()
    out: dict[str, object] = {
        "pool": {"sessions": len(sessions), "gmv_per_session": float(sessions.gmv.mean()),
                 "conversion": float((sessions.gmv > 0).mean()),
                 "cv": float(sessions.gmv.std() / sessions.gmv.mean())},
        "horizon_sessions": args.horizon,
    }
    timings = []
    for name, effect in (("harmful", -0.05), ("harmless", 0.0)):
        results = []
        for seed in range(args.runs):
            t0 = time.perf_counter()
            results.append(simulate_rollout(sessions.gmv, sessions.clicked, effect=effect, schedule=schedule,
                                            guardrails=guardrails, seed=seed))
            if name == "harmful":
                timings.append((time.perf_counter() - t0) * 1e3)
        halted = [r for r in results if r.halted]
        out[name] = {
            "effect": effect,
            "runs": args.runs,
            "halted_share": len(halted) / args.runs,
            "median_sessions_at_halt": statistics.median([r.sessions_at_halt or 0 for r in halted]) if halted else None,
            "median_treatment_sessions_at_halt": statistics.median([r.treatment_sessions for r in halted])
            if halted else None,
            "breached": sorted({b for r in halted for b in r.breached}),
        }
    out["anchor_naive_peeking"] = {
        "halted_share_harmless": naive_peeking_halts(sessions.gmv, min(args.runs, 100), 1_000_000, 10_000, 0.5),
        "note": "fixed-sample z-test checked every 10,000 sessions, 50/50 split, 1M sessions",
    }
    out["ms_per_run"] = statistics.median(timings)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
