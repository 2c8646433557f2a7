"""Fraud decision latency, server side, with embedded (in-process) and Redis features.

    .venv/bin/python -m benchmarks.bench_fraud [--requests 2000] [--repeats 5] [--redis-url URL]

Setup: a seeded simulated marketplace (20,000 users, 30 days), its payment attempts
replayed through the fraud feature state, a :class:`FraudModel` fitted as the ``fraud``
trainer fits it (LightGBM 400 rounds + logistic + IsolationForest feature, calibrated).
Then the *later* attempts are decided one by one through ``FraudService.score`` (validate
-> features from the in-memory state -> blend -> calibrated score -> thresholds ->
LightGBM contributions for the reasons -> state update): exactly the request path of
``POST /v1/fraud/score`` minus HTTP and the audit-row write.

The same decisions are then made with the feature state in Redis
(:class:`~marketpilot.fraud.redis_state.RedisFeatureState`, primed with the same history;
one Lua round trip per decision), as the distributed profile serves them.

Anchors, same run: a bare ``Booster.predict`` of one row with the same booster, and a bare
redis-py ``GET`` for the Redis figures. Reported: p50 and p99 per decision (median over
`--repeats` passes), and their ratio to the anchor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from marketpilot.fraud.evaluation_data import from_directory
from marketpilot.fraud.features import FEATURES, FeatureState
from marketpilot.fraud.model import FraudModel
from marketpilot.fraud.redis_state import RedisFeatureState
from marketpilot.fraud.service import FraudService
from marketpilot.platform.db import Database
from marketpilot.simulate import SimulationConfig, simulate


def percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def timed(call, items) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for item in items:
        t0 = time.perf_counter()
        call(item)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="empty: skip the Redis figures")
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
        if args.redis_url:
            results |= {"decision_redis": [], "anchor_redis_get": []}
        booster = model.booster
        for _ in range(args.repeats):
            service = FraudService(db)
            service.install(model, "fraud/bench")
            state = FeatureState()
            for r in requests[:fit_rows]:
                state.observe(r)
            service.state = state
            results["decision"].append(percentiles(timed(service.score, requests[fit_rows:])))
            rows = np.ascontiguousarray(np.column_stack([data.features[fit_rows:], model.anomaly(data.features[fit_rows:])]))
            anchor = timed(lambda row: booster.predict(row, num_threads=1), [rows[i:i + 1] for i in range(len(rows))])
            results["anchor"].append(percentiles(anchor))
            if args.redis_url:
                shared = RedisFeatureState(args.redis_url, prefix=f"bench:fraud:{uuid.uuid4().hex}:")
                try:
                    for r in requests[:fit_rows]:
                        shared.observe(r)
                    service.state = shared
                    results["decision_redis"].append(percentiles(timed(service.score, requests[fit_rows:])))
                    shared.redis.set(f"{shared.prefix}probe", b"x" * 64)
                    probe = [f"{shared.prefix}probe"] * args.requests
                    results["anchor_redis_get"].append(percentiles(timed(shared.redis.get, probe)))
                finally:
                    shared.clear()
        db.dispose()
    out: dict[str, object] = {}
    for name, runs in results.items():
        out[name] = {"p50_ms": statistics.median(p for p, _ in runs), "p99_ms": statistics.median(q for _, q in runs)}
    out["ratio_p50"] = out["decision"]["p50_ms"] / out["anchor"]["p50_ms"]
    out["ratio_p99"] = out["decision"]["p99_ms"] / out["anchor"]["p99_ms"]
    if args.redis_url:
        out["redis_vs_embedded_p50"] = out["decision_redis"]["p50_ms"] / out["decision"]["p50_ms"]
        out["redis_vs_embedded_p99"] = out["decision_redis"]["p99_ms"] / out["decision"]["p99_ms"]
    out["setup"] = {"requests": args.requests, "repeats": args.repeats, "transactions": n, "features": len(FEATURES),
                    "lightgbm_rounds": 400}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
