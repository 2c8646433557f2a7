"""Feature store benchmark: online read latency and memory, against Feast in the same run.

    .venv/bin/python -m benchmarks.bench_features [--entities 1000000] [--reads 20000]

Measures, for one view of 20 float32 features:

* read of one entity (all 20 features), p50/p99 over many reads of random entities, on the
  embedded store and on Redis, plus a raw redis-py ``GET`` of one key as the floor;
* memory for ``--entities`` entities: embedded RSS growth and array bytes, Redis
  ``used_memory`` growth (in database 2, flushed afterwards);
* Feast's ``get_online_features`` for one entity with the same 20 features, on its SQLite and
  Redis online stores, run in Feast's own virtualenv (``--feast-python``, default
  ``.venv-feast/bin/python``; ``make bench-feast-env`` creates it from the pins in
  ``benchmarks/feast-requirements.txt``) through ``benchmarks/feast_online_read.py``.

Prints one JSON object: our figures, Feast's, and the ratios Feast / marketpilot.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import redis
from prometheus_client import CollectorRegistry

from marketpilot.platform.features import (
    EmbeddedOnlineStore,
    Feature,
    FeatureView,
    OnlineStore,
    RedisOnlineStore,
)

N_FEATURES = 20
BENCH_REDIS_DB = 2
FEAST_REDIS_DB = 3
CHUNK = 100_000
BUDGET_MS = {"embedded": 0.2, "redis": 2.0}

VIEW = FeatureView(
    "bench_user", "user_id", [Feature(f"f{i}") for i in range(N_FEATURES)], staleness_sla=timedelta(hours=1)
)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    arr = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
    }


def load(store: OnlineStore, entities: int, seed: int) -> float:
    """Write `entities` rows in chunks (inputs freed as it goes); returns seconds taken."""
    rng = np.random.default_rng(seed)
    now_ms = time.time_ns() // 1_000_000
    start = time.perf_counter()
    for lo in range(0, entities, CHUNK):
        n = min(CHUNK, entities - lo)
        ids = [f"u{i}" for i in range(lo, lo + n)]
        values = {f"f{j}": rng.random(n, dtype=np.float32) for j in range(N_FEATURES)}
        store.write(VIEW, ids, values, now_ms - 60_000)
    return time.perf_counter() - start


def time_reads(store: OnlineStore, entities: int, reads: int, seed: int, batch: int = 1) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, entities, size=(reads, batch))
    ids = [[f"u{i}" for i in row] for row in picks.tolist()]
    for row in ids[: min(500, reads)]:  # warm-up
        store.read(VIEW, row)
    samples = []
    for row in ids:
        start = time.perf_counter_ns()
        out = store.read(VIEW, row)
        samples.append(time.perf_counter_ns() - start)
    if not out.present.all():
        raise RuntimeError("benchmark read found an absent entity: the load did not complete")
    return percentiles(samples)


def bench_embedded(entities: int, reads: int, seed: int) -> dict[str, object]:
    gc.collect()
    before = rss_bytes()
    store = EmbeddedOnlineStore(metrics=CollectorRegistry())
    load_s = load(store, entities, seed)
    gc.collect()
    rss = rss_bytes() - before
    index_bytes = sys.getsizeof(store._tables[VIEW.name].index) + sum(
        sys.getsizeof(k) for k in store._tables[VIEW.name].index
    )
    result: dict[str, object] = {
        "entities": entities,
        "load_s": load_s,
        "rss_delta_bytes": rss,
        "array_bytes": store.nbytes(VIEW),
        "index_bytes_est": index_bytes,
        "read_one": time_reads(store, entities, reads, seed),
        "read_100": time_reads(store, entities, max(reads // 20, 200), seed + 1, batch=100),
    }
    del store
    gc.collect()
    return result


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def bench_redis(url: str, entities: int, reads: int, seed: int) -> dict[str, object]:
    client = redis.Redis.from_url(url)
    if client.dbsize():
        raise SystemExit(f"Redis database {BENCH_REDIS_DB} is not empty; the benchmark flushes it, so it must be ours")
    store = RedisOnlineStore(client, prefix="bench:", metrics=CollectorRegistry())
    try:
        before = used_memory(client)
        load_s = load(store, entities, seed)
        mem = used_memory(client) - before
        key = f"bench:{VIEW.name}:{VIEW.signature}:u1"
        raw = []
        for _ in range(reads):
            start = time.perf_counter_ns()
            client.get(key)
            raw.append(time.perf_counter_ns() - start)
        return {
            "entities": entities,
            "load_s": load_s,
            "used_memory_delta_bytes": mem,
            "bytes_per_entity": mem / entities,
            "read_one": time_reads(store, entities, reads, seed),
            "read_100": time_reads(store, entities, max(reads // 20, 200), seed + 1, batch=100),
            "raw_get_one_key": percentiles(raw),
        }
    finally:
        client.flushdb()
        client.close()


def bench_feast(python: str, kind: str, entities: int, reads: int, redis_base: str) -> dict[str, object]:
    script = Path(__file__).with_name("feast_online_read.py")
    if not Path(python).exists():
        return {"error": f"{python} not found: create Feast's virtualenv (see this module's docstring)"}
    cmd = [python, str(script), "--store", kind, "--entities", str(entities), "--reads", str(reads),
           "--redis-url", f"{redis_base}/{FEAST_REDIS_DB}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-2000:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def ratio(a: object, b: object, key: str) -> float | None:
    if not isinstance(a, dict) or not isinstance(b, dict) or key not in a or key not in b:
        return None
    return float(a[key]) / float(b[key])


def main() -> None:
    parser = argparse.ArgumentParser(description="Feature store online benchmark (see module docstring).")
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="server URL without a database number")
    parser.add_argument("--feast-python", default=".venv-feast/bin/python")
    parser.add_argument("--feast-entities", type=int, default=10_000)
    parser.add_argument("--feast-reads", type=int, default=2_000)
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    embedded = bench_embedded(args.entities, args.reads, args.seed)
    redis_result = bench_redis(f"{args.redis}/{BENCH_REDIS_DB}", args.entities, args.reads, args.seed)
    feast: dict[str, object] = {}
    if not args.no_feast:
        for kind in ("sqlite", "redis"):
            feast[kind] = bench_feast(args.feast_python, kind, args.feast_entities, args.feast_reads, args.redis)
    emb_one, red_one = embedded["read_one"], redis_result["read_one"]
    report = {
        "benchmark": "online feature read, one entity, 20 float32 features",
        "load_average_1m_5m_15m": os.getloadavg(),
        "cores": os.cpu_count(),
        "marketpilot": {"embedded": embedded, "redis": redis_result},
        "feast": feast,
        "ratios": {
            "feast_sqlite_p50_over_embedded_p50": ratio(feast.get("sqlite"), emb_one, "p50_ms"),
            "feast_sqlite_p99_over_embedded_p99": ratio(feast.get("sqlite"), emb_one, "p99_ms"),
            "feast_redis_p50_over_redis_p50": ratio(feast.get("redis"), red_one, "p50_ms"),
            "feast_redis_p99_over_redis_p99": ratio(feast.get("redis"), red_one, "p99_ms"),
            "redis_p50_over_raw_get_p50": ratio(red_one, redis_result["raw_get_one_key"], "p50_ms"),
        },
        "budgets": {
            "embedded_p99_ms<=0.2": emb_one["p99_ms"] <= BUDGET_MS["embedded"],  # type: ignore[index]
            "redis_p99_ms<=2": red_one["p99_ms"] <= BUDGET_MS["redis"],  # type: ignore[index]
            "embedded_rss_1M_x_20<=1GiB": int(embedded["rss_delta_bytes"]) <= 2**30,  # type: ignore[call-overload]
        },
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
