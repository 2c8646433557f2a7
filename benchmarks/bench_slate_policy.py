"""What exploration and fairness add to a recommendation request's server-side latency.

Same synthetic catalogue as `bench_recommend` (100k listings by default, embedded SQLite), the
deterministic fallback ranking as the ranker (no trained model at this scale), k = 20. Two
services on the same database: the plain one, and one with the slate policy on (epsilon-greedy
exploration at epsilon 0.1 with a 5% budget, cold-start exposure target 0.2 with a 5% relevance
bound). Requests alternate between them in blocks of 100 so machine noise hits both alike;
each of `--runs` runs reports p50/p95 per arm, and the figures are medians over runs. Both
arms log every slate (logging is in both; its cost is measured by bench_recommend's anchor).

    python -m benchmarks.bench_slate_policy [--listings 100000] [--requests 2000] [--runs 3]

Prints one JSON object; the target is p95(policy) - p95(plain) <= 2 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchmarks.bench_recommend import REGIONS, USERS, K, percentile, seed

BLOCK = 100


def measure(listings: int, requests: int, runs: int) -> dict[str, Any]:
    from marketpilot.platform.config import load_settings
    from marketpilot.recommend.service import RecommendationRequest
    from marketpilot.runtime import Runtime

    home = Path(tempfile.mkdtemp(prefix="bench-slate-policy-"))
    seed(home, listings)
    plain = Runtime(load_settings(home=home, profile="embedded"))
    policy = Runtime(load_settings(
        home=home, profile="embedded", recommend_exploration="epsilon_greedy", recommend_epsilon=0.1,
        recommend_explore_share=0.05, recommend_cold_start_exposure=0.2, recommend_max_relevance_loss=0.05,
    ))
    arms = {"plain": plain.recommendations, "policy": policy.recommendations}
    for svc in arms.values():
        svc.warm()
    rng = np.random.default_rng(5)
    users = rng.integers(0, USERS, 1_000_000)
    counter = [0]

    def request() -> RecommendationRequest:
        counter[0] += 1
        u = int(users[counter[0] % len(users)])
        return RecommendationRequest(k=K, user_id=f"u{u}-{counter[0]}", region=REGIONS[u % len(REGIONS)], device="mobile")

    per_run: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    for _ in range(runs):
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _block in range(0, requests, BLOCK):
            for name, svc in arms.items():
                for _ in range(BLOCK):
                    start = time.perf_counter()
                    svc.recommend(request())
                    times[name].append(time.perf_counter() - start)
        for name, values in times.items():
            per_run[name].append({"p50_ms": percentile(values, 0.5) * 1000, "p95_ms": percentile(values, 0.95) * 1000})
    result: dict[str, Any] = {"listings": listings, "requests_per_arm_per_run": requests, "runs": runs, "k": K,
                              "load_average_1m_5m_15m": os.getloadavg()}
    for name, rows in per_run.items():
        result[name] = {key: round(statistics.median(r[key] for r in rows), 3) for key in ("p50_ms", "p95_ms")}
    result["added_p95_ms"] = round(result["policy"]["p95_ms"] - result["plain"]["p95_ms"], 3)
    result["added_p50_ms"] = round(result["policy"]["p50_ms"] - result["plain"]["p50_ms"], 3)
    slate_policy = policy.recommendations.slate_policy
    assert slate_policy is not None
    accounts = slate_policy.budget.accounts()
    result["explored_share"] = {f"{c}/{d}": round(a.explored_share, 4) for (c, d), a in accounts.items()}
    result["exposure_audit"] = slate_policy.audit()
    plain.close()
    policy.close()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.listings, args.requests, args.runs), indent=2, default=str))


if __name__ == "__main__":
    main()
