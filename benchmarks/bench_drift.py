"""Drift detection: recording cost on the request path, evaluation cost, false alarms, delay.

    .venv/bin/python -m benchmarks.bench_drift [--windows 1000] [--replications 20] [--window 500]

Measures, in one process, and prints one JSON object:

- ``record``: ns per `ModelRecorder.record` of a 20-feature vector (a list, as a request
  handler has it), against the anchor of writing the same list into a preallocated numpy
  row (`buf[i] = v`, the least any array-backed recorder can do); figure of merit = ratio.
- ``evaluate_ms``: statistics for one closed window (20 features + prediction, `--window`
  events), and ``drain_ms``: the same plus storing the report on SQLite.
- ``false_alarm``: share of `--windows` drift-free windows (the injector's no-drift
  control) judged ``drift`` with the default thresholds.
- ``detection``: per injected change (mean shift 0.5 sd, variance x1.5, category mix 20%),
  over `--replications` streams with the change point at a random event of window 10: the
  share detected by the end of the window after the change point's, and the delay in
  events from the change point to the end of the first window judged ``drift``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from marketpilot.platform.db import Database
from marketpilot.platform.monitoring.drift import (
    ClosedWindow,
    DriftMonitor,
    DriftThresholds,
    ModelRecorder,
    Reference,
    WindowSpec,
    evaluate,
)
from marketpilot.simulate.drift import DriftInjector, DriftScenario

SCENARIOS = {
    "mean_shift": ("x0", 0.5),
    "variance": ("x1", 1.5),
    "category_mix": ("c0", 0.2),
}


def ns_per_call(fn: object, calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def windows_of(reference: Reference, spec: WindowSpec, features: np.ndarray, predictions: np.ndarray,
               times: np.ndarray) -> list[ClosedWindow]:
    closed: list[ClosedWindow] = []
    recorder = ModelRecorder("bench", reference, spec, closed.append)
    recorder.record_many(features, predictions, times)
    return closed


def bench_record(reference: Reference, d: int, calls: int) -> dict[str, float]:
    recorder = ModelRecorder("bench", reference, WindowSpec.every(timedelta(days=365), capacity=calls * 6),
                             lambda _w: None)
    vector = [float(i) for i in range(d)]
    buf = np.empty((calls * 6, d))
    i = [0]

    def anchor() -> None:
        buf[i[0] % buf.shape[0]] = vector
        i[0] += 1

    t = 1.7e9
    ours = ns_per_call(lambda: recorder.record(vector, 0.5, t), calls)
    base = ns_per_call(anchor, calls)
    return {"record_ns": round(ours), "anchor_ns": round(base), "ratio": round(ours / base, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    size, thresholds = args.window, DriftThresholds()

    # A 20-feature model for the cost figures.
    wide = DriftInjector(numeric=18, categorical=2, seed=args.seed)
    train = wide.training(20_000)
    wide_ref = Reference.fit(train.features, train.predictions, names=train.names, categorical=train.categorical)
    record = bench_record(wide_ref, len(wide.names), 20_000)
    live = wide.stream(20 * size, part=1)
    closed = windows_of(wide_ref, WindowSpec.count(size), live.features, live.predictions, live.times)
    start = time.perf_counter()
    for w in closed:
        evaluate(w, thresholds)
    evaluate_ms = (time.perf_counter() - start) * 1000 / len(closed)
    with tempfile.TemporaryDirectory() as home:
        db = Database(f"sqlite:///{Path(home) / 'bench.db'}")
        db.migrate()
        monitor = DriftMonitor(db, source="/bench", window=WindowSpec.count(size), thresholds=thresholds)
        monitor.register("bench", wide_ref).record_many(live.features, live.predictions, live.times)
        start = time.perf_counter()
        drained = monitor.drain()
        drain_ms = (time.perf_counter() - start) * 1000 / len(drained)
        db.dispose()

    # The model of the tests (4 numeric, 1 categorical) for false alarms and detection.
    injector = DriftInjector(numeric=4, categorical=1, seed=args.seed)
    train = injector.training(20_000)
    reference = Reference.fit(train.features, train.predictions, names=train.names, categorical=train.categorical,
                              seed=args.seed)
    control = injector.stream(args.windows * size, part=2)
    verdicts = [evaluate(w, thresholds).verdict
                for w in windows_of(reference, WindowSpec.count(size), control.features, control.predictions,
                                    control.times)]
    false_alarms = verdicts.count("drift")

    rng = np.random.default_rng(args.seed)
    detection: dict[str, dict[str, float]] = {}
    for kind, (column, magnitude) in SCENARIOS.items():
        delays, within_one, early = [], 0, 0
        for r in range(args.replications):
            change_at = 10 * size + int(rng.integers(size))
            scenario = DriftScenario(kind, change_at=change_at, columns=(column,), magnitude=magnitude)
            s = injector.stream(14 * size, scenario, part=1000 + r)
            v = [evaluate(w, thresholds).verdict
                 for w in windows_of(reference, WindowSpec.count(size), s.features, s.predictions, s.times)]
            early += v[:10].count("drift")
            after = [i for i in range(10, len(v)) if v[i] == "drift"]
            if after:
                delays.append((after[0] + 1) * size - change_at)
                within_one += after[0] <= 11
        detection[kind] = {
            "detected_within_one_window": within_one / args.replications,
            "delay_events_mean": round(statistics.fmean(delays), 1) if delays else float("nan"),
            "delay_events_max": max(delays) if delays else float("nan"),
            "false_alarms_before_change": early,
        }

    print(json.dumps({
        "benchmark": "drift",
        "window": size,
        "thresholds": {"psi": thresholds.psi, "alpha": thresholds.alpha, "correction": thresholds.correction,
                       "min_count": thresholds.min_count},
        "record": record,
        "evaluate_ms": round(evaluate_ms, 2),
        "drain_ms": round(drain_ms, 2),
        "features": len(wide.names),
        "false_alarm": {"windows": len(verdicts), "alarms": false_alarms,
                        "rate": round(false_alarms / len(verdicts), 4)},
        "detection": detection,
    }, indent=2))


if __name__ == "__main__":
    main()
