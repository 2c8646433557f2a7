"""Recommendation serving: server-side latency, HTTP throughput per core, memory, ANN build.

    .venv/bin/python -m benchmarks.bench_recommend [--listings 100000] [--large 1000000]
        [--requests 2000] [--runs 3] [--seconds 5] [--skip-http] [--skip-large]

Embedded profile, a temporary home, a synthetic catalogue bulk-inserted into SQLite:
`--listings` listings in 200 categories (prices, creation times spread over a year), one
inventory row each, 5,000 users in 8 regions, and 2 interactions per listing (capped at
300,000) over the last 30 days, so the fallback's regional popularity is real.

Measured, each figure the median of `runs` runs:

* server side, in process (``RecommendationService.recommend``: availability refresh from
  the outbox, mask, suppression, feature read, ranking, guard, slate log), k = 20, random
  users and regions, one request in ten with a category filter:
  - ``fallback``: no trained model registered, the deterministic fallback ranks;
  - ``ann_two_stage``: a model stand-in shaped like the two-stage pipeline: retrieve 500
    candidates from an HNSW index (``recommend.ann``) of 32-d item embeddings with the
    availability mask, re-rank them by embedding score plus a popularity prior, top 20;
  - anchor: a bare numpy top-20 (``argpartition``) over a random score vector of the
    catalogue size: the least any ranking over the catalogue costs.
* over HTTP (100k only): ``POST /v1/recommendations`` on the marketplace app in a uvicorn
  subprocess pinned to one CPU (``sched_setaffinity``), the load generator (stdlib
  http.client, 8 keep-alive connections in threads, `seconds` per run) on the other; anchor: an empty FastAPI route served
  and loaded the same way. requests/s of the one server core.
* ``--large`` listings: the same in-process latencies; the HNSW build time of the large
  catalogue's embeddings (2 threads) and recall@10 of the ANN against exact search over 200
  queries (unfiltered, and with the availability mask); peak resident memory (VmHWM) of
  this process, which holds the serving state (availability arrays, fallback scores, the
  ANN index and its vectors, the runtime).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REGIONS = ["eu-west", "eu-east", "us-east", "us-west", "apac", "latam", "africa", "mena"]
CATEGORIES = 200
USERS = 5000
DIM = 32
K = 20


# -- catalogue ------------------------------------------------------------------------------


def seed(home: Path, n: int, seed_: int = 0) -> str:
    """Bulk-insert the synthetic catalogue; returns a service key."""
    from sqlalchemy import insert

    from marketpilot.platform.auth import Role, create_key
    from marketpilot.platform.config import load_settings
    from marketpilot.platform.db import schema as t
    from marketpilot.runtime import Runtime

    rng = np.random.default_rng(seed_)
    now = datetime.now(UTC)
    rt = Runtime(load_settings(home=home, profile="embedded"))
    try:
        with rt.db.session() as s:
            s.execute(insert(t.Seller), [{"id": f"s{i}", "name": f"Shop {i}"} for i in range(100)])
            s.execute(
                insert(t.User),
                [{"id": f"u{i}", "region": REGIONS[i % len(REGIONS)], "created_at": now} for i in range(USERS)],
            )
        cats = rng.integers(0, CATEGORIES, n)
        prices = rng.integers(100, 100_000, n)
        ages = rng.uniform(0, 365, n)
        chunk = 50_000
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            with rt.db.session() as s:
                s.execute(
                    insert(t.Listing),
                    [
                        {
                            "id": f"l{i:07d}", "seller_id": f"s{i % 100}", "title": f"Item {i}", "description": "",
                            "category_path": f"c{cats[i] // 20}/c{cats[i]}", "attributes": {},
                            "price_minor": int(prices[i]), "currency": "EUR", "status": "active",
                            "created_at": now - timedelta(days=float(ages[i])), "updated_at": now,
                        }
                        for i in range(start, stop)
                    ],
                )
                s.execute(
                    insert(t.Inventory),
                    [{"listing_id": f"l{i:07d}", "quantity": 1 + i % 5, "reserved": 0, "version": 0,
                      "updated_at": now} for i in range(start, stop)],
                )
        m = min(2 * n, 300_000)
        popular = rng.zipf(1.3, m) % n
        events = np.array(["view", "click", "add_to_cart", "purchase"])[rng.choice(4, m, p=[0.7, 0.2, 0.07, 0.03])]
        users = rng.integers(0, USERS, m)
        when = rng.uniform(0, 29, m)
        for start in range(0, m, chunk):
            with rt.db.session() as s:
                s.execute(
                    insert(t.Interaction),
                    [
                        {"id": f"i{j}", "user_id": f"u{users[j]}", "listing_id": f"l{popular[j]:07d}",
                         "event": str(events[j]), "timestamp": now - timedelta(days=float(when[j]))}
                        for j in range(start, min(m, start + chunk))
                    ],
                )
        return create_key(rt.db, Role.SERVICE, name="bench")[1]
    finally:
        rt.close()


def embeddings(n: int, seed_: int = 1) -> np.ndarray:
    """Item vectors grouped around category centres, as content embeddings are."""
    rng = np.random.default_rng(seed_)
    centres = rng.normal(size=(CATEGORIES, DIM))
    cats = np.random.default_rng(0).integers(0, CATEGORIES, n)  # the catalogue's categories
    return (centres[cats] + 0.8 * rng.normal(size=(n, DIM))).astype(np.float32)


class AnnTwoStage:
    """Model stand-in shaped like the two-stage pipeline: ANN retrieval of 500 candidates
    (masked), a re-rank by embedding score plus a popularity prior, top k."""

    name = "ann-two-stage"

    def __init__(self, listing_ids: list[str], vectors: np.ndarray, prior: np.ndarray, index: Any) -> None:
        from marketpilot.recommend.model import Catalog

        self.catalog = Catalog.build(listing_ids, [f"u{i}" for i in range(USERS)])
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.prior = prior.astype(np.float32)
        self.index = index
        rng = np.random.default_rng(5)
        self.user_vectors = self.vectors[rng.integers(0, len(vectors), USERS)]

    def recommend(self, query: Any, allowed: Any = None) -> Any:
        from marketpilot.recommend.model import Candidates

        u = self.user_vectors[query.user] if query.user >= 0 else self.vectors[0]
        got = self.index.query(u, 500, allowed)
        score = got.scores + 0.1 * self.prior[got.items]
        top = np.argsort(-score)[: query.k]
        return Candidates(got.items[top], score[top].astype(np.float32))

    def similar(self, item: int, k: int, allowed: Any = None) -> Any:
        return self.index.query(self.vectors[item], k, allowed)


# -- in-process latency ---------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Any, requests: int, runs: int) -> dict[str, float]:
    p50s, p95s = [], []
    for _ in range(runs):
        out = []
        for i in range(requests):
            start = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - start)
        p50s.append(percentile(out, 0.5))
        p95s.append(percentile(out, 0.95))
    return {"p50_ms": round(statistics.median(p50s) * 1000, 3), "p95_ms": round(statistics.median(p95s) * 1000, 3)}


def in_process(home: Path, n: int, requests: int, runs: int, *, ann: bool) -> dict[str, Any]:
    from marketpilot.platform.config import load_settings
    from marketpilot.recommend.ann import AnnIndex, recall_at_k
    from marketpilot.recommend.availability import Filters
    from marketpilot.recommend.model import Query
    from marketpilot.recommend.service import LoadedModel, RecommendationRequest
    from marketpilot.runtime import Runtime

    rt = Runtime(load_settings(home=home, profile="embedded"))
    svc = rt.recommendations
    t0 = time.perf_counter()
    svc.warm()
    warm_s = time.perf_counter() - t0
    rng = np.random.default_rng(3)
    users = rng.integers(0, USERS, 100_000)

    def request(i: int) -> RecommendationRequest:
        u = int(users[i % len(users)])
        filters = Filters(category=f"c{u % 10}") if i % 10 == 0 else Filters()
        return RecommendationRequest(k=K, user_id=f"u{u}-{i}", region=REGIONS[u % len(REGIONS)], filters=filters)

    scores = rng.random(n).astype(np.float32)
    result: dict[str, Any] = {"listings": n, "warm_up_s": round(warm_s, 2)}
    result["anchor_numpy_top20"] = timed(lambda i: np.argpartition(-scores, K)[:K], requests, runs)
    # Let the model stand-in take the user index: random users of the catalogue.
    result["fallback"] = timed(lambda i: svc.recommend(request(i)), requests, runs)
    if ann:
        vectors = embeddings(n)
        index = AnnIndex(DIM, capacity=n, m=12, ef_construction=64, ef=64, threads=2)
        t0 = time.perf_counter()
        index.add(vectors, np.arange(n))
        build_s = time.perf_counter() - t0
        queries = embeddings(200, seed_=11)[:200]
        allowed = svc.availability.mask()
        result["ann"] = {
            "build_s": round(build_s, 1),
            "dim": DIM,
            "m": 12,
            "ef_construction": 64,
            "ef": 64,
            "recall_at_10": round(recall_at_k(index, queries, 10), 4),
            "recall_at_10_masked": round(recall_at_k(index, queries, 10, allowed), 4),
            "score_recall_at_10": round(recall_at_k(index, queries, 10, by="score"), 4),
        }
        index.ef = 256
        result["ann"]["recall_at_10_ef256"] = round(recall_at_k(index, queries, 10), 4)
        index.ef = 64
        prior = np.log1p(np.arange(n)[::-1] / n)
        model = AnnTwoStage(svc.availability.universe.ids[:n], vectors, prior, index)
        svc.use_model(LoadedModel(model, {"ann-two-stage": "bench"}))

        strategies: dict[str, int] = {}

        def model_request(i: int) -> None:
            u = int(users[i % len(users)])
            slate = svc.recommend(
                RecommendationRequest(k=K, user_id=f"u{u}", region=REGIONS[u % len(REGIONS)],
                                      filters=Filters(category=f"c{u % 10}") if i % 10 == 0 else Filters())
            )
            strategies[slate.strategy] = strategies.get(slate.strategy, 0) + 1

        result["ann_two_stage"] = timed(model_request, requests, runs)
        result["ann_two_stage"]["strategies"] = strategies  # budget fallbacks are served, counted
        model_times = []
        for i in range(min(requests, 1000)):  # the model call alone, for the budget picture
            u = int(users[i % len(users)])
            mask = svc.availability.mask(Filters(category=f"c{u % 10}") if i % 10 == 0 else Filters())
            start = time.perf_counter()
            model.recommend(Query(k=K, user=u, region=REGIONS[u % len(REGIONS)]), mask)
            model_times.append(time.perf_counter() - start)
        result["ann_two_stage"]["model_call_p95_ms"] = round(percentile(model_times, 0.95) * 1000, 3)
    for key in ("fallback", "ann_two_stage"):
        if key in result:
            result[f"ratio_p95_{key}_vs_numpy_top20"] = round(result[key]["p95_ms"] / result["anchor_numpy_top20"]["p95_ms"], 1)
    svc.slates.flush()
    result["slates_logged"] = svc.slates.written
    gc.collect()
    result["rss_peak_mib"] = _vm("VmHWM")
    result["rss_now_mib"] = _vm("VmRSS")
    rt.close()
    return result


def _vm(field: str, pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


# -- HTTP ----------------------------------------------------------------------------------


def _serve(which: str, port: int, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    from marketpilot.api.server import run

    if which == "anchor":
        from benchmarks.bench_api import anchor_app

        app = anchor_app()
    else:
        from marketpilot.api.app import create_app

        app = create_app()
        app.state.runtime.recommendations.warm()
    run(app, host="127.0.0.1", port=port, log_level="warning")


@contextmanager
def server(which: str, env: dict[str, str], log: Path, cpu: int) -> Iterator[tuple[str, int]]:
    from benchmarks.bench_api import free_port
    from benchmarks.server_process import stop, wait_ready

    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_recommend", "--serve", which, "--port", str(port),
             "--cpu", str(cpu)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{base}/healthz" if which == "api" else f"{base}/empty", log, 600)
        yield base, proc.pid
    finally:
        stop(proc)


def _load(base: str, method: str, path: str, body: Any, headers: dict[str, str], seconds: float,
          connections: int = 8) -> float:
    """Requests/s of `connections` keep-alive connections (stdlib http.client, one thread
    each: a light client, so the server core is what saturates)."""
    import http.client
    import threading

    host, port = base.removeprefix("http://").split(":")
    counts = [0] * connections
    errors: list[BaseException] = []
    deadline = time.monotonic() + seconds

    def worker(w: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        i = 0
        try:
            while time.monotonic() < deadline:
                i += 1
                data = None if body is None else json.dumps(body(w, i)).encode()
                extra = {"Content-Type": "application/json"} if data is not None else {}
                conn.request(method, path, body=data, headers={**headers, **extra})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{method} {path}: HTTP {response.status}")
                counts[w] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(connections)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return sum(counts) / (time.monotonic() - start)


def http(home: Path, key: str, seconds: float, runs: int) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]
    env = {**os.environ, "MARKETPILOT_HOME": str(home), "MARKETPILOT_PROFILE": "embedded",
           "MARKETPILOT_CONFIG": str(home / "none.toml")}
    env.pop("MARKETPILOT_DATABASE_URL", None)
    log = home / "server.log"
    os.sched_setaffinity(0, {client_cpu})
    try:
        with server("anchor", env, log, server_cpu) as (base, _pid):
            anchor = [_load(base, "GET", "/empty", None, {}, seconds) for _ in range(runs)]

        def body(w: int, i: int) -> dict[str, Any]:
            u = (w * 7919 + i) % USERS
            return {"user_id": f"u{u}-{w}-{i}", "k": K, "context": {"region": REGIONS[u % len(REGIONS)]}}

        headers = {"Authorization": f"Bearer {key}"}
        with server("api", env, log, server_cpu) as (base, pid):
            rec = [_load(base, "POST", "/v1/recommendations", body, headers, seconds) for _ in range(runs)]
            rss = _vm("VmHWM", str(pid))
    finally:
        os.sched_setaffinity(0, set(cpus))
    return {
        "server_cpus": 1,
        "connections": 8,
        "seconds_per_run": seconds,
        "anchor_empty_route_rps": round(statistics.median(anchor)),
        "recommendations_rps": round(statistics.median(rec)),
        "runs_recommendations_rps": [round(r) for r in rec],
        "ratio_rps_vs_anchor": round(statistics.median(rec) / statistics.median(anchor), 3),
        "server_rss_peak_mib": rss,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "recommend", "profile": "embedded", "k": K, "runs": args.runs,
                           "requests_per_run": args.requests}
    with tempfile.TemporaryDirectory(prefix="mp-bench-rec-") as tmp:
        home = Path(tmp) / "small"
        t0 = time.perf_counter()
        key = seed(home, args.listings)
        out["seed_small_s"] = round(time.perf_counter() - t0, 1)
        out["small"] = in_process(home, args.listings, args.requests, args.runs, ann=True)
        if not args.skip_http:
            out["http_small"] = http(home, key, args.seconds, args.runs)
    if not args.skip_large:
        with tempfile.TemporaryDirectory(prefix="mp-bench-rec-") as tmp:
            home = Path(tmp) / "large"
            t0 = time.perf_counter()
            seed(home, args.large)
            out["seed_large_s"] = round(time.perf_counter() - t0, 1)
            out["large"] = in_process(home, args.large, args.requests, args.runs, ann=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--serve", choices=["anchor", "api"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve, args.port, args.cpu)
        return
    print(json.dumps(measure(args), indent=2))


if __name__ == "__main__":
    main()
