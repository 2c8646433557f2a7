"""Fraud decision latency, server side, with embedded (in-process) features.

    .venv/bin/python -m benchmarks.bench_fraud [--requests 2000] [--repeats 5]

Setup: a seeded simulated marketplace (20,000 users, 30 days), its payment attempts
replayed through the fraud feature state, a :class:`FraudModel` fitted as the ``fraud``
trainer fits it (LightGBM 400 rounds + logistic + IsolationForest feature, calibrated).
Then the *later* attempts are decided one by one through ``FraudService.score`` (validate
-> features from the in-memory state -> blend -> calibrated score -> thresholds ->
LightGBM contributions for the reasons -> state update): exactly the request path of
``POST /v1/fraud/score`` minus HTTP and the audit-row write.

Anchor, same run: a bare ``Booster.predict`` of one row with the same booster. Reported:
p50 and p99 per decision (median over `--repeats` passes), and their ratio to the anchor.
A Redis-backed feature read is not measured: the fraud state is in-process only (see
docs/fraud.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from marketpilot.fraud.evaluation_data import from_directory
from marketpilot.fraud.features import FEATURES, FeatureState
from marketpilot.fraud.model import FraudModel
from marketpilot.fraud.service import FraudService
from marketpilot.platform.db import Database
from marketpilot.simulate import SimulationConfig, simulate


def percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fraud-") as scratch:
        root = Path(scratch)
        simulate(SimulationConfig(listings=2000, users=20_000, days=30, seed=5), out=root / "sim")
        data = from_directory(root / "sim", name="bench")
        requests = data.extra["requests"]
        n = len(requests)
        fit_rows = n - args.requests
        model = FraudModel(FEATURES, rounds=400, mlp_hidden=(), seed=7).fit(data.features[:fit_rows],
                                                                            data.labels[:fit_rows])
        db = Database(f"sqlite:///{root / 'bench.db'}")  # score() never touches it
        results: dict[str, list[tuple[float, float]]] = {"decision": [], "anchor": []}
        booster = model.booster
        for _ in range(args.repeats):
            service = FraudService(db)
            service.install(model, "fraud/bench")
            state = FeatureState()
            for r in requests[:fit_rows]:
                state.observe(r)
            service.state = state
            timings = []
            for r in requests[fit_rows:]:
                t0 = time.perf_counter()
                service.score(r)
                timings.append(time.perf_counter() - t0)
            results["decision"].append(percentiles(timings))
            rows = np.ascontiguousarray(np.column_stack([data.features[fit_rows:], model.anomaly(data.features[fit_rows:])]))
            anchor = []
            for i in range(len(rows)):
                t0 = time.perf_counter()
                booster.predict(rows[i:i + 1], num_threads=1)
                anchor.append(time.perf_counter() - t0)
            results["anchor"].append(percentiles(anchor))
        db.dispose()
    out: dict[str, object] = {}
    for name, runs in results.items():
        out[name] = {"p50_ms": statistics.median(p for p, _ in runs), "p99_ms": statistics.median(q for _, q in runs)}
    out["ratio_p50"] = out["decision"]["p50_ms"] / out["anchor"]["p50_ms"]
    out["ratio_p99"] = out["decision"]["p99_ms"] / out["anchor"]["p99_ms"]
    out["setup"] = {"requests": args.requests, "repeats": args.repeats, "transactions": n, "features": len(FEATURES),
                    "lightgbm_rounds": 400}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
