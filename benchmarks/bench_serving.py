"""Model serving: V2 `/infer` overhead over an in-process call, and micro-batching under load.

    .venv/bin/python -m benchmarks.bench_serving [--requests 2000] [--runs 3] \
        [--concurrency 32] [--load-requests 3000] [--trees 100:31,500:255]

For each LightGBM model (`--trees` as TREES:LEAVES, 20 features; registered in a temporary
registry and promoted, so the server loads it by alias as in production):

- ``in_process``: `ServedModel.predict` on one FP32 row, in this process: the anchor.
  ``booster_predict`` is `booster.predict(row)` alone, for reference.
- ``v2_infer``: `POST /v2/models/{name}/infer` with the same row as V2 JSON, sent one at a
  time over a keep-alive httpx client to the real app under uvicorn in a subprocess (service
  key, middleware, metrics and JSON access log on, as in production). p50/p99 are medians
  over `runs`; ``overhead_*_ms`` = v2 - in-process.
- ``load``: `--concurrency` clients (aiohttp, keep-alive) send `--load-requests` one-row
  requests as fast as they can, against a server with micro-batching off, then on
  (`BatchConfig(max_batch_size=64, max_delay=0)`): throughput, p50/p99 latency (medians of
  `runs` alternating runs), and the mean rows per predict call read from the server's own
  `marketpilot_model_batch_rows` metric.

The anchor app (one empty `async` route, same uvicorn settings) gives the HTTP floor of
this machine. Client and server share the machine's cores. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from benchmarks.server_process import stop, wait_ready

FEATURES = 20
MODEL = "bench-scorer"


# -- the server side ------------------------------------------------------------------------


def _serve(port: int, batching: bool, anchor: bool) -> None:
    from fastapi import FastAPI

    from marketpilot.api.server import run

    if anchor:
        app = FastAPI()

        @app.get("/empty")
        async def empty() -> dict[str, bool]:
            return {"ok": True}

        run(app, host="127.0.0.1", port=port, log_level="info")
        return

    from marketpilot.api.app import create_app
    from marketpilot.platform.config import get_settings
    from marketpilot.platform.models.batching import BatchConfig
    from marketpilot.platform.models.registry import open_registry
    from marketpilot.platform.models.serving import ModelServer

    app = create_app()
    server: ModelServer = app.state.model_server
    with open_registry(get_settings()) as registry:
        server.load(registry, MODEL)
    if batching:
        server.set_batching(MODEL, BatchConfig(max_batch_size=64, max_delay=0.0))
    run(app, host="127.0.0.1", port=port, log_level="info")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(env: dict[str, str], log: Path, *, batching: bool = False, anchor: bool = False) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.bench_serving", "--serve", "--port", str(port)]
    args += ["--batching"] if batching else []
    args += ["--anchor"] if anchor else []
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    probe = f"{base}/empty" if anchor else f"{base}/v2/models/{MODEL}/ready"
    try:
        wait_ready(proc, probe, log, 120)
        yield base
    finally:
        stop(proc)


# -- measuring ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(runs: list[list[float]]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(percentile(r, 0.50) for r in runs) * 1000, 4),
        "p99_ms": round(statistics.median(percentile(r, 0.99) for r in runs) * 1000, 4),
    }


def timed_calls(call: object, n: int, warmup: int) -> list[float]:
    assert callable(call)
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def sequential_http(client: httpx.Client, method: str, url: str, body: bytes | None, n: int, warmup: int) -> list[float]:
    def call() -> None:
        response = client.request(method, url, content=body)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text}")

    return timed_calls(call, n, warmup)


async def _load(base: str, headers: dict[str, str], bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    import aiohttp

    url = f"{base}/v2/models/{MODEL}/infer"
    latencies: list[float] = []
    queue = list(reversed(bodies))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                start = time.perf_counter()
                async with session.post(url, data=body) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {await response.text()}")
                latencies.append(time.perf_counter() - start)

        warm = [session.post(url, data=bodies[0]) for _ in range(concurrency)]
        for request in warm:
            async with request as response:
                await response.read()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies


def batch_rows(base: str, headers: dict[str, str]) -> float | None:
    text = httpx.get(f"{base}/metrics", headers=headers).text
    found = {
        kind: float(m.group(1))
        for kind in ("sum", "count")
        if (m := re.search(rf'^marketpilot_model_batch_rows_{kind}{{model="{MODEL}",version="1"}} (\S+)$', text, re.M))
    }
    return round(found["sum"] / found["count"], 2) if found.get("count") else None


def infer_body(row: np.ndarray) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "input__0", "shape": [1, FEATURES], "datatype": "FP32", "data": row.tolist()}]}
    ).encode()


# -- the benchmark --------------------------------------------------------------------------


def prepare(home: Path, trees: int, leaves: int) -> tuple[object, np.ndarray, str]:
    """Train and register a model; returns (booster, rows, service key)."""
    import lightgbm as lgb

    from marketpilot.platform.auth import Role, create_key
    from marketpilot.platform.config import load_settings
    from marketpilot.platform.models.fingerprints import fingerprint
    from marketpilot.platform.models.registry import ModelRegistry
    from marketpilot.runtime import Runtime

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=len(x)) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": leaves, "verbose": -1, "num_threads": 2, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=trees)
    settings = load_settings(home=home, profile="embedded")
    with ModelRegistry.from_settings(settings) as registry:
        version = registry.log_training_run(
            MODEL, model=booster, params={"trees": trees, "num_leaves": leaves}, metrics={},
            data_fingerprint=fingerprint(x, y),
        )
        registry.promote(MODEL, version.version)
    rt = Runtime(settings)
    try:
        key = create_key(rt.db, Role.SERVICE, name="bench")[1]
    finally:
        rt.close()
    return booster, x[:5000], key


def measure_model(size: str, args: argparse.Namespace, anchor: dict[str, float]) -> dict[str, object]:
    from marketpilot.platform.models.serving_adapters import booster_model

    with tempfile.TemporaryDirectory(prefix="mp-bench-serving-") as tmp:
        home = Path(tmp) / "home"
        trees, leaves = (int(part) for part in size.split(":"))
        booster, rows, key = prepare(home, trees, leaves)
        env = {**os.environ, "MARKETPILOT_HOME": str(home), "MARKETPILOT_PROFILE": "embedded",
               "MARKETPILOT_CONFIG": str(Path(tmp) / "none.toml")}  # fmt: skip
        env.pop("MARKETPILOT_DATABASE_URL", None)
        log = Path(tmp) / "server.log"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        warmup = max(100, args.requests // 10)

        served = booster_model(booster, name=MODEL, version="1")
        one = {"input__0": rows[:1]}
        in_process = summarise(
            [timed_calls(lambda: served.predict(one), args.requests, warmup) for _ in range(args.runs)]
        )
        raw = summarise(
            [timed_calls(lambda: booster.predict(rows[:1], num_threads=1), args.requests, warmup)  # type: ignore[attr-defined]
             for _ in range(args.runs)]
        )  # fmt: skip

        body = infer_body(rows[0])
        with server(env, log) as base, httpx.Client(base_url=base, headers=headers) as client:
            reply = client.post(f"/v2/models/{MODEL}/infer", content=body).json()["outputs"][0]["data"]
            expected = np.asarray(booster.predict(rows[:1]), dtype=np.float32).tolist()  # type: ignore[attr-defined]
            if reply != expected:
                raise RuntimeError(f"served {reply} but the booster says {expected}")
            v2 = summarise(
                [sequential_http(client, "POST", f"/v2/models/{MODEL}/infer", body, args.requests, warmup)
                 for _ in range(args.runs)]
            )  # fmt: skip

        bodies = [infer_body(rows[i % len(rows)]) for i in range(args.load_requests)]
        load: dict[str, object] = {}
        # Both servers up at once (an idle one costs nothing); runs alternate off/on so a
        # change in the machine's background load hits both alike. Medians over runs.
        with server(env, log) as plain, server(env, log, batching=True) as batched:
            results: dict[str, list[tuple[float, float, float]]] = {"batching_off": [], "batching_on": []}
            for _ in range(args.runs):
                for label, base in (("batching_off", plain), ("batching_on", batched)):
                    seconds, latencies = asyncio.run(_load(base, headers, bodies, args.concurrency))
                    results[label].append(
                        (len(bodies) / seconds, percentile(latencies, 0.5), percentile(latencies, 0.99))
                    )
            for label, base in (("batching_off", plain), ("batching_on", batched)):
                runs = results[label]
                load[label] = {
                    "requests_per_second": round(statistics.median(r[0] for r in runs)),
                    "runs_requests_per_second": [round(r[0]) for r in runs],
                    "p50_ms": round(statistics.median(r[1] for r in runs) * 1000, 3),
                    "p99_ms": round(statistics.median(r[2] for r in runs) * 1000, 3),
                    "mean_rows_per_predict": batch_rows(base, headers),
                }
        off, on = load["batching_off"], load["batching_on"]
        assert isinstance(off, dict) and isinstance(on, dict)
        load["throughput_ratio_on_off"] = round(on["requests_per_second"] / off["requests_per_second"], 2)

    return {
        "trees": trees,
        "num_leaves": leaves,
        "booster_predict": raw,
        "in_process": in_process,
        "v2_infer": v2,
        "overhead_p50_ms": round(v2["p50_ms"] - in_process["p50_ms"], 4),
        "overhead_p99_ms": round(v2["p99_ms"] - in_process["p99_ms"], 4),
        "v2_over_empty_route_p50_ms": round(v2["p50_ms"] - anchor["p50_ms"], 4),
        "load": load,
    }


def measure(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mp-bench-anchor-") as tmp:
        log = Path(tmp) / "server.log"
        with server(dict(os.environ), log, anchor=True) as base, httpx.Client(base_url=base) as client:
            warmup = max(100, args.requests // 10)
            anchor = summarise([sequential_http(client, "GET", "/empty", None, args.requests, warmup) for _ in range(args.runs)])
    models = [measure_model(size, args, anchor) for size in args.trees.split(",")]
    return {
        "benchmark": "serving",
        "machine_cores": os.cpu_count(),
        "requests_per_run": args.requests,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "load_requests": args.load_requests,
        "anchor_empty_route": anchor,
        "models": models,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--load-requests", type=int, default=3000)
    parser.add_argument("--trees", default="100:31,500:255", help="models as TREES:LEAVES, comma-separated")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batching", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--anchor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.port, args.batching, args.anchor)
        return
    print(json.dumps(measure(args), indent=2))


if __name__ == "__main__":
    main()
