"""HTTP API latency and ingest throughput against an empty-route anchor, over real sockets.

    .venv/bin/python -m benchmarks.bench_api [--requests 3000] [--runs 3] [--batches 20]

Starts uvicorn in subprocesses on loopback ports (embedded profile, temporary home, JSON
logs to a file, the same server settings for both):
  (a) anchor: a bare FastAPI app with one empty `async` route;
  (b) the marketpilot app: `GET /v1/listings/{id}` with a merchant key (auth, scoping, a
      database read, middleware, metrics, access log);
  (c) `POST /v1/interactions/batch` with batches of 1,000 new interactions.
A keep-alive httpx client sends requests one at a time; p50/p99 are the medians of `runs`
runs, and the figure of merit is p99(b) / p99(a). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from benchmarks.server_process import stop, wait_ready
from fastapi import FastAPI

INGEST_BATCH = 1_000


def anchor_app() -> FastAPI:
    app = FastAPI()

    @app.get("/empty")
    async def empty() -> dict[str, bool]:
        return {"ok": True}

    return app


def _serve(which: str, port: int) -> None:
    from marketpilot.api.server import run

    if which == "anchor":
        app = anchor_app()
    else:
        from marketpilot.api.app import create_app

        app = create_app()
    run(app, host="127.0.0.1", port=port, log_level="info")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(which: str, env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_api", "--serve", which, "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{base}/healthz" if which == "api" else f"{base}/empty", log, 60)
        yield base
    finally:
        stop(proc)


def latencies(client: httpx.Client, url: str, n: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        client.get(url).raise_for_status()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        out.append(time.perf_counter() - start)
        response.raise_for_status()
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(runs: list[list[float]]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(percentile(r, 0.50) for r in runs) * 1000, 3),
        "p99_ms": round(statistics.median(percentile(r, 0.99) for r in runs) * 1000, 3),
    }


def interaction_batches(count: int, offset: int) -> list[bytes]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = ("view", "click", "add_to_cart", "purchase")
    bodies = []
    for b in range(count):
        items = [
            {
                "user_id": f"u{(offset + b * INGEST_BATCH + i) % 5000}",
                "listing_id": f"l{i % 997}",
                "event": events[i % 4],
                "timestamp": (start + timedelta(seconds=offset + b * INGEST_BATCH + i)).isoformat(),
            }
            for i in range(INGEST_BATCH)
        ]
        bodies.append(json.dumps({"items": items}).encode())
    return bodies


def ingest_rate(client: httpx.Client, base: str, headers: dict[str, str], bodies: list[bytes]) -> float:
    start = time.perf_counter()
    for body in bodies:
        response = client.post(f"{base}/v1/interactions/batch", content=body, headers=headers)
        response.raise_for_status()
        if response.json()["accepted"] != INGEST_BATCH:
            raise RuntimeError(f"expected {INGEST_BATCH} new interactions, got {response.json()}")
    return len(bodies) * INGEST_BATCH / (time.perf_counter() - start)


def seed(home: Path) -> tuple[str, str]:
    """A seller, a listing, a merchant key and a service key in a fresh embedded home."""
    from marketpilot.domain.entities import ListingIn, SellerIn
    from marketpilot.platform.auth import Role, create_key
    from marketpilot.platform.config import load_settings
    from marketpilot.runtime import Runtime

    rt = Runtime(load_settings(home=home, profile="embedded"))
    try:
        rt.sellers.create(SellerIn(id="s1", name="Bench shop"))
        rt.listings.create(
            ListingIn(id="l1", seller_id="s1", title="Bench item", category_path="bench", price_minor=100, currency="EUR")
        )
        return create_key(rt.db, Role.MERCHANT, seller_id="s1")[1], create_key(rt.db, Role.SERVICE)[1]
    finally:
        rt.close()


def measure(requests: int, runs: int, batches: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mp-bench-api-") as tmp:
        home = Path(tmp) / "home"
        merchant, service = seed(home)
        env = {**os.environ, "MARKETPILOT_HOME": str(home), "MARKETPILOT_PROFILE": "embedded",
               "MARKETPILOT_CONFIG": str(Path(tmp) / "none.toml")}
        env.pop("MARKETPILOT_DATABASE_URL", None)
        log = Path(tmp) / "server.log"
        warmup = max(100, requests // 10)

        def timed(which: str, path: str, headers: dict[str, str]) -> list[list[float]]:
            with server(which, env, log) as base, httpx.Client(base_url=base, headers=headers) as client:
                return [latencies(client, path, requests, warmup) for _ in range(runs)]

        anchor = summarise(timed("anchor", "/empty", {}))
        listing = summarise(timed("api", "/v1/listings/l1", {"Authorization": f"Bearer {merchant}"}))
        with server("api", env, log) as base, httpx.Client(timeout=60) as client:
            headers = {"Authorization": f"Bearer {service}", "Content-Type": "application/json"}
            rates: list[float] = []
            for run in range(runs):
                bodies = interaction_batches(batches, offset=run * batches * INGEST_BATCH)
                rates.append(ingest_rate(client, base, headers, bodies))
        return {
            "benchmark": "api",
            "profile": "embedded",
            "requests_per_run": requests,
            "runs": runs,
            "anchor_empty_route": anchor,
            "get_listing_authenticated": listing,
            "ratio_p99": round(listing["p99_ms"] / anchor["p99_ms"], 2),
            "ratio_p50": round(listing["p50_ms"] / anchor["p50_ms"], 2),
            "ingest": {
                "batch_size": INGEST_BATCH,
                "batches_per_run": batches,
                "events_per_second": round(statistics.median(rates)),
                "runs_events_per_second": [round(r) for r in rates],
            },
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--serve", choices=["anchor", "api"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve, args.port)
        return
    print(json.dumps(measure(args.requests, args.runs, args.batches), indent=2))


if __name__ == "__main__":
    main()

