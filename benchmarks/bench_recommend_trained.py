"""The trained two-stage pipeline (not a stand-in) on a large synthetic catalogue: fit time,
stage 1's HNSW build time and recall, serving latency through the service, requests/s over
HTTP and the serving process's memory.

    .venv/bin/python -m benchmarks.bench_recommend_trained [--listings 100000] [--requests 1000] [--runs 3]
        [--train-listings M] [--skip-http] [--seconds 5] [--config JSON] [--force-ranker]

Setup: `bench_recommend.seed`'s catalogue (200 categories, 5,000 users in 8 regions, 2
interactions per listing up to 300,000) in a temporary embedded home; the pipeline fitted
as `RecommendTrainer` fits it (all but the latest 1 % of interactions). With
`--train-listings M` the pipeline is fitted on the first M listings only (and their
interactions) and the rest are added afterwards through `TwoStagePipeline.add_listings`,
the path a listing created after training takes (for catalogues too large to train on here).
`--config` takes `PipelineConfig` overrides as a JSON object (e.g. '{"als_regularization":
0.05, "als_alpha": 2}'). The pipeline's nested validation may choose the stage-1 blend over
the ranker (it did on this catalogue until the decision needed a lead of two standard errors,
`pipeline.ranker_kept`), which serves faster; `--force-ranker` serves the fitted ranker
anyway, so the full two-stage path is what is timed.

Measured, in order:
- `fit_s`; `ann`: stage 1's HNSW build seconds per index (`prepare_serving`, at start-up) and
  recall of each index against exact search over 200 random users (ALS: the users' factors,
  inner product; content: their history profiles, cosine), at k = 10 and at the retriever's
  depth, with and without the availability mask, by id and by score (`score_recall_*`: an
  ANN result counts when its exact similarity reaches the exact k-th one; the synthetic
  catalogue's titles make thousands of listings tie, so id recall understates the index) and
  `shortfall_at_10` (median of the exact 10th similarity minus the ANN's worst of 10, beside
  the median spread of the exact top 10);
- `model_call`: `TwoStagePipeline.recommend` alone with the service's mask, p50/p95;
- `similar`: `RecommendationService.similar` (`GET /v1/listings/{id}/similar`) for random
  listings, k = 20, p50/p95 as below;
- `trained_pipeline`: `--requests` requests per run through ``RecommendationService.recommend``
  (k = 20, random users and regions, one in ten with a category filter), p50/p95 the median
  of `--runs` runs, and the strategies the slates were served with (the latency guard serves
  the fallback when the model is too slow); anchor: a numpy top-20 over a random vector of
  the catalogue's size;
- `http` (unless `--skip-http`): the app in a uvicorn process pinned to one CPU with the
  pipeline loaded from its saved bundle, `POST /v1/recommendations` from 8 keep-alive
  connections on the other CPU, against an empty FastAPI route served the same way; the
  server's peak RSS is the serving process's memory (`serving_rss_peak_mib`).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from benchmarks import bench_recommend as catalogue


def _restrict(data: Any, keep: int) -> Any:
    """The training data limited to the first `keep` listings (ids in catalogue order)."""
    listings = data.listings.iloc[:keep]
    ids = set(listings["listing_id"].astype(str))
    interactions = data.interactions[data.interactions["listing_id"].astype(str).isin(ids)]
    return interactions, listings


def recall(pipeline: Any, users: np.ndarray, history: Any, allowed: np.ndarray | None) -> dict[str, Any]:
    """Recall of stage 1's HNSW indexes against exact search, for the users' own query vectors."""
    from marketpilot.recommend.ann import recall_at_k
    from marketpilot.recommend.retrievers.base import Batch

    out: dict[str, Any] = {}
    for name in ("als", "content"):
        index = pipeline._large.index(name)
        r = pipeline.retrievers.get(name)
        if index is None or r is None:
            continue
        if name == "als":
            queries = r.user_factors[users]
        else:  # profiles from each user's interactions (the training matrix row)
            queries = r.profiles(Batch(users, history[users], []))
        queries = queries[np.abs(queries).max(axis=1) > 0]
        depth = pipeline.config.depth.get(name, 10)
        out[name] = {
            "queries": len(queries),
            "recall_at_10": round(recall_at_k(index, queries, 10), 4),
            f"recall_at_{depth}": round(recall_at_k(index, queries, depth), 4),
            "recall_at_10_masked": round(recall_at_k(index, queries, 10, allowed), 4),
            "score_recall_at_10": round(recall_at_k(index, queries, 10, by="score"), 4),
            f"score_recall_at_{depth}": round(recall_at_k(index, queries, depth, by="score"), 4),
            "shortfall_at_10": shortfall(index, queries, 10),
        }
    return out


def shortfall(index: Any, queries: np.ndarray, k: int) -> dict[str, float]:
    """How much worse the ANN's worst of k is than the exact k-th (similarity), against how far
    the exact top k spreads: medians over the queries. A shortfall far below the spread means
    the missed items were near-ties of what was returned."""
    gaps, spreads = [], []
    for row in queries:
        exact = index.exact(row, k)
        if len(exact.items) < k:
            continue
        got = index.similarity(row, index.query(row, k).items)
        gaps.append(float(exact.scores[-1] - got.min()))
        spreads.append(float(exact.scores[0] - exact.scores[-1]))
    return {"p50": round(float(np.median(gaps)), 6) if gaps else 0.0,
            "top_k_spread_p50": round(float(np.median(spreads)), 6) if spreads else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--train-listings", type=int, default=0,
                        help="fit on the first M listings, add the rest through add_listings")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--config", default="{}", help="PipelineConfig overrides, a JSON object")
    parser.add_argument("--force-ranker", action="store_true",
                        help="serve the ranker even if the nested validation chose the blend")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # bundle path: run the HTTP server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(Path(args.serve), args.port, args.cpu)
        return

    from marketpilot.platform.config import load_settings
    from marketpilot.platform.models.artifacts import save_model
    from marketpilot.recommend.availability import Filters
    from marketpilot.recommend.catalog_data import fit_pipeline
    from marketpilot.recommend.interactions import Interactions
    from marketpilot.recommend.model import Query
    from marketpilot.recommend.pipeline import PipelineConfig
    from marketpilot.recommend.retrievers.content import listing_texts
    from marketpilot.recommend.service import LoadedModel, RecommendationRequest
    from marketpilot.recommend.trainer import RecommendTrainer
    from marketpilot.runtime import Runtime

    result: dict[str, Any] = {"listings": args.listings, "started": datetime.now(UTC).isoformat(timespec="seconds"),
                              "load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-recommend-trained-") as scratch:
        home = Path(scratch)
        key = catalogue.seed(home, args.listings)
        rt = Runtime(load_settings(home=home, profile="embedded"))
        try:
            data = RecommendTrainer().load_data(rt, datetime.now(UTC), 0.01).train
            interactions, listings = data.interactions, data.listings
            if args.train_listings and args.train_listings < len(listings):
                interactions, listings = _restrict(data, args.train_listings)
                result["train_listings"] = args.train_listings
            overrides = json.loads(args.config)
            config = PipelineConfig.from_json(PipelineConfig().to_json() | overrides)
            if overrides:
                result["config_overrides"] = overrides
            t0 = time.perf_counter()
            pipeline = fit_pipeline(interactions, listings, data.users, config)
            result["fit_s"] = round(time.perf_counter() - t0, 1)
            result["chosen_by_validation"] = "ranker" if pipeline.uses_ranker else "blend"
            if args.force_ranker and pipeline.ranker is not None:
                pipeline.uses_ranker = True
            result["rss_peak_after_fit_mib"] = catalogue._vm("VmHWM")
            if args.train_listings and args.train_listings < len(data.listings):
                rest = data.listings.iloc[args.train_listings:]
                t0 = time.perf_counter()
                paths = rest["category_path"].tolist() if "category_path" in rest else None
                pipeline.add_listings(list(rest["listing_id"].astype(str)), listing_texts(rest.reset_index(drop=True)),
                                      categories=paths)
                result["add_listings_s"] = round(time.perf_counter() - t0, 1)
            result["uses_ranker"] = pipeline.uses_ranker
            result["retrievers"] = list(pipeline.retrievers)
            result["catalogue_items"] = pipeline.catalog.n_items
            result["stage1"] = "hnsw" if pipeline.catalog.n_items >= pipeline.config.ann_min_items else "dense"
            bundle = home / "bundle"
            save_model(pipeline.to_bundle(), bundle)

            t0 = time.perf_counter()
            built = pipeline.prepare_serving()
            result["ann"] = {"prepare_s": round(time.perf_counter() - t0, 1),
                             "build_s": {k: round(v, 1) for k, v in built.items()},
                             "settings": dataclasses.asdict(pipeline._large.settings)}
            svc = rt.recommendations
            svc.warm()
            svc.use_model(LoadedModel(pipeline, {"recommend": "bench"}))
            _warm(svc, pipeline)
            allowed_universe = svc.availability.mask()
            allowed = svc.availability.to_catalog(pipeline.catalog, allowed_universe)
            sample = np.random.default_rng(5).choice(pipeline.catalog.n_users, 200, replace=False)
            fitted = Interactions.from_frame(interactions, pipeline.catalog)
            if built:
                result["ann"] |= recall(pipeline, sample, fitted.matrix(), allowed)

            users = np.random.default_rng(3).integers(0, catalogue.USERS, args.requests)
            strategies: dict[str, int] = {}

            def request(i: int) -> None:
                u = int(users[i % len(users)])
                slate = svc.recommend(RecommendationRequest(
                    k=catalogue.K, user_id=f"u{u}", region=catalogue.REGIONS[u % len(catalogue.REGIONS)],
                    filters=Filters(category=f"c{u % 10}") if i % 10 == 0 else Filters()))
                strategies[slate.strategy] = strategies.get(slate.strategy, 0) + 1

            recent = fitted.histories()
            masks = {None: allowed}

            def model_call(i: int) -> None:
                u = int(users[i % len(users)])
                f = f"c{u % 10}" if i % 10 == 0 else None
                if f not in masks:
                    masks[f] = svc.availability.to_catalog(pipeline.catalog, svc.availability.mask(Filters(category=f)))
                index = pipeline.catalog.user_index.get(f"u{u}", -1)
                hist = recent[index][-50:] if index >= 0 else np.empty(0, np.int64)
                pipeline.recommend(Query(k=catalogue.K, user=index, history=hist,
                                         region=catalogue.REGIONS[u % len(catalogue.REGIONS)]), masks[f])

            scores = np.random.default_rng(4).random(args.listings).astype(np.float32)
            result["anchor_numpy_top20"] = catalogue.timed(
                lambda i: np.argpartition(-scores, catalogue.K)[:catalogue.K], args.requests, args.runs)
            result["model_call"] = catalogue.timed(model_call, args.requests, args.runs)
            result["trained_pipeline"] = catalogue.timed(request, args.requests, args.runs)
            listing_ids = pipeline.catalog.listing_ids
            seeds = np.random.default_rng(6).integers(0, len(listing_ids), args.requests)
            similar_strategies: dict[str, int] = {}

            def similar(i: int) -> None:
                slate = svc.similar(str(listing_ids[int(seeds[i % len(seeds)])]), k=catalogue.K)
                similar_strategies[slate.strategy] = similar_strategies.get(slate.strategy, 0) + 1

            result["similar"] = catalogue.timed(similar, args.requests, args.runs) | {
                "strategies": similar_strategies}
            result["strategies"] = strategies
            result["ratio_p95_trained_vs_numpy_top20"] = round(
                result["trained_pipeline"]["p95_ms"] / max(result["anchor_numpy_top20"]["p95_ms"], 1e-9), 1)
            result["rss_peak_bench_process_mib"] = catalogue._vm("VmHWM")
            svc.slates.flush()
        finally:
            rt.close()
        if not args.skip_http:
            del pipeline
            result["http"] = http(home, key, bundle, args.seconds, args.runs)
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


def _serve(bundle: Path, port: int, cpu: int) -> None:
    """The app with the pipeline loaded from `bundle`, its indexes built before serving."""
    os.sched_setaffinity(0, {cpu})
    from marketpilot.api.app import create_app
    from marketpilot.api.server import run
    from marketpilot.platform.models.artifacts import load_model
    from marketpilot.recommend.pipeline import TwoStagePipeline
    from marketpilot.recommend.service import LoadedModel

    app = create_app()
    svc = app.state.runtime.recommendations
    svc.warm()
    pipeline = TwoStagePipeline.from_bundle(load_model(bundle))
    pipeline.prepare_serving()
    svc.use_model(LoadedModel(pipeline, {"recommend": "bench"}))
    _warm(svc, pipeline)
    run(app, host="127.0.0.1", port=port, log_level="warning")


def _warm(svc: Any, pipeline: Any) -> None:
    """Start-up work before the first measured request: the check for listings newer than the
    model and the universe-to-catalogue mapping (one dictionary lookup per listing), then a
    few requests, after which the latency window is reset so the guard starts clean."""
    from marketpilot.recommend.service import LoadedModel, RecommendationRequest

    svc.sync_new_listings(pipeline)
    svc.availability.to_catalog(pipeline.catalog, svc.availability.mask())
    for u in range(8):
        svc.recommend(RecommendationRequest(k=catalogue.K, user_id=f"u{u}"))
    svc.use_model(LoadedModel(pipeline, {"recommend": "bench"}))


def http(home: Path, key: str, bundle: Path, seconds: float, runs: int) -> dict[str, Any]:
    from benchmarks.bench_api import free_port
    from benchmarks.server_process import stop, wait_ready

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]
    env = {**os.environ, "MARKETPILOT_HOME": str(home), "MARKETPILOT_PROFILE": "embedded",
           "MARKETPILOT_CONFIG": str(home / "none.toml")}
    env.pop("MARKETPILOT_DATABASE_URL", None)
    log = home / "server.log"

    def body(w: int, i: int) -> dict[str, Any]:
        u = (w * 7919 + i) % catalogue.USERS
        return {"user_id": f"u{u}", "k": catalogue.K, "context": {"region": catalogue.REGIONS[u % len(catalogue.REGIONS)]}}

    os.sched_setaffinity(0, {client_cpu})
    out: dict[str, Any] = {"server_cpus": 1, "connections": 8, "seconds_per_run": seconds}
    try:
        with catalogue.server("anchor", env, log, server_cpu) as (base, _pid):
            anchor = [catalogue._load(base, "GET", "/empty", None, {}, seconds) for _ in range(runs)]
        port = free_port()
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_recommend_trained", "--serve", str(bundle), "--port",
                 str(port), "--cpu", str(server_cpu)], env=env, stdout=sink, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            t0 = time.perf_counter()
            wait_ready(proc, f"{base}/healthz", log, 1800)
            out["server_start_s"] = round(time.perf_counter() - t0, 1)
            headers = {"Authorization": f"Bearer {key}"}
            rec = [catalogue._load(base, "POST", "/v1/recommendations", body, headers, seconds) for _ in range(runs)]
            out["serving_rss_peak_mib"] = catalogue._vm("VmHWM", str(proc.pid))
            out["strategies"] = _strategies(base, key)
        finally:
            stop(proc)
    finally:
        os.sched_setaffinity(0, set(cpus))
    out |= {
        "anchor_empty_route_rps": round(statistics.median(anchor)),
        "recommendations_rps": round(statistics.median(rec)),
        "runs_recommendations_rps": [round(r) for r in rec],
        "ratio_rps_vs_anchor": round(statistics.median(rec) / statistics.median(anchor), 3),
    }
    return out


def _strategies(base: str, key: str) -> dict[str, float]:
    """Slates per strategy the server counted (its /metrics)."""
    import urllib.request

    req = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=30) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("marketpilot_recommendation_requests_total{"):
            label = line.split('strategy="', 1)[1].split('"', 1)[0]
            out[label] = float(line.rsplit(" ", 1)[1])
    return out


if __name__ == "__main__":
    main()
