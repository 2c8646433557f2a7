"""The trained two-stage pipeline (not a stand-in) on a large synthetic catalogue: fit time,
serving latency through the service, and how often the latency guard had to serve the fallback.

    .venv/bin/python -m benchmarks.bench_recommend_trained [--listings 100000] [--requests 1000] [--runs 3]

Setup: `bench_recommend.seed`'s catalogue (200 categories, 5,000 users in 8 regions, 2
interactions per listing up to 300,000) in a temporary embedded home; the pipeline fitted
as `RecommendTrainer` fits it (all but the latest 1 % of interactions), installed on the
service. Then `--requests` requests per run through ``RecommendationService.recommend``
(k = 20, random users and regions, one in ten with a category filter), p50/p95 the median of
`--runs` runs, and the strategies the slates were served with. Anchor: a numpy top-20 over a
random vector of the catalogue's size. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from benchmarks import bench_recommend as catalogue


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from marketpilot.platform.config import load_settings
    from marketpilot.recommend.availability import Filters
    from marketpilot.recommend.catalog_data import fit_pipeline
    from marketpilot.recommend.service import LoadedModel, RecommendationRequest
    from marketpilot.recommend.trainer import RecommendTrainer
    from marketpilot.runtime import Runtime

    with tempfile.TemporaryDirectory(prefix="bench-recommend-trained-") as scratch:
        home = Path(scratch)
        catalogue.seed(home, args.listings)
        rt = Runtime(load_settings(home=home, profile="embedded"))
        try:
            data = RecommendTrainer().load_data(rt, datetime.now(UTC), 0.01).train
            t0 = time.perf_counter()
            pipeline = fit_pipeline(data.interactions, data.listings, data.users, None)
            fit_s = time.perf_counter() - t0
            svc = rt.recommendations
            svc.warm()
            svc.use_model(LoadedModel(pipeline, {"recommend": "bench"}))
            users = np.random.default_rng(3).integers(0, catalogue.USERS, args.requests)
            strategies: dict[str, int] = {}

            def request(i: int) -> None:
                u = int(users[i % len(users)])
                slate = svc.recommend(RecommendationRequest(
                    k=catalogue.K, user_id=f"u{u}", region=catalogue.REGIONS[u % len(catalogue.REGIONS)],
                    filters=Filters(category=f"c{u % 10}") if i % 10 == 0 else Filters()))
                strategies[slate.strategy] = strategies.get(slate.strategy, 0) + 1

            scores = np.random.default_rng(4).random(args.listings).astype(np.float32)
            result = {
                "listings": args.listings,
                "fit_s": round(fit_s, 1),
                "uses_ranker": pipeline.uses_ranker,
                "retrievers": list(pipeline.retrievers),
                "anchor_numpy_top20": catalogue.timed(lambda i: np.argpartition(-scores, catalogue.K)[:catalogue.K],
                                                      args.requests, args.runs),
                "trained_pipeline": catalogue.timed(request, args.requests, args.runs),
                "strategies": strategies,
                "rss_peak_mib": catalogue._vm("VmHWM"),
            }
            svc.slates.flush()
        finally:
            rt.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
