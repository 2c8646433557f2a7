"""Feast's online read of one entity with 20 features, the anchor of bench_features.

Runs in Feast's own interpreter (a separate virtualenv: Feast's dependency pins must never
touch the project's), started by ``benchmarks/bench_features.py`` as a subprocess. It builds
a throwaway Feast repository in a temporary directory with the same data shape the
marketpilot benchmark uses (string user ids, 20 float32 features), materialises it into the
requested online store and times ``get_online_features(...).to_dict()`` for one entity.
Prints one JSON object. Imports nothing from marketpilot.

    /tmp/feastenv/bin/python benchmarks/feast_online_read.py --store sqlite --entities 10000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

N_FEATURES = 20


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "mean_ms": sum(ordered) / len(ordered) / 1e6}


def run(store_kind: str, entities: int, reads: int, redis_url: str, seed: int) -> dict[str, object]:
    import numpy as np
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32

    repo = Path(tempfile.mkdtemp(prefix="feast-bench-"))
    if store_kind == "sqlite":
        online = f"  type: sqlite\n  path: {repo / 'online.db'}\n"
    else:
        host_port, db = redis_url.removeprefix("redis://").rsplit("/", 1)
        online = f"  type: redis\n  connection_string: \"{host_port},db={db}\"\n"
    (repo / "feature_store.yaml").write_text(
        "project: mpbench\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        "entity_key_serialization_version: 3\n"
        f"online_store:\n{online}"
        "offline_store:\n  type: file\n"
    )
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    frame = pd.DataFrame({f"f{i}": rng.random(entities, dtype=np.float32) for i in range(N_FEATURES)})
    frame.insert(0, "user_id", [f"u{i}" for i in range(entities)])
    frame["event_timestamp"] = pd.Timestamp(now - timedelta(minutes=5))
    data = repo / "data.parquet"
    frame.to_parquet(data)

    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="bench_view",
        entities=[user],
        ttl=timedelta(days=1),
        schema=[Field(name=f"f{i}", dtype=Float32) for i in range(N_FEATURES)],
        source=FileSource(path=str(data), timestamp_field="event_timestamp"),
        online=True,
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([user, view])
    t = time.perf_counter()
    store.materialize(now - timedelta(hours=1), now)
    materialize_s = time.perf_counter() - t

    features = [f"bench_view:f{i}" for i in range(N_FEATURES)]
    ids = [f"u{random.Random(seed + k).randrange(entities)}" for k in range(reads)]
    check = store.get_online_features(features=features, entity_rows=[{"user_id": ids[0]}]).to_dict()
    row = frame.iloc[int(ids[0][1:])]
    if abs(check["f3"][0] - float(row["f3"])) > 1e-6:
        raise SystemExit(f"feast returned {check['f3'][0]} for f3, expected {row['f3']}")
    for e in ids[:200]:  # warm-up: registry cache, connections
        store.get_online_features(features=features, entity_rows=[{"user_id": e}]).to_dict()
    samples = []
    for e in ids:
        start = time.perf_counter_ns()
        store.get_online_features(features=features, entity_rows=[{"user_id": e}]).to_dict()
        samples.append(time.perf_counter_ns() - start)
    if store_kind == "redis":
        store.teardown()  # removes the project's keys from the Redis database
    import feast

    return {
        "feast_version": feast.__version__,
        "store": store_kind,
        "entities": entities,
        "reads": reads,
        "materialize_s": materialize_s,
        **_percentiles(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "redis"], required=True)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with contextlib.redirect_stdout(sys.stderr):  # Feast prints progress; stdout carries the JSON
        result = run(args.store, args.entities, args.reads, args.redis_url, args.seed)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
