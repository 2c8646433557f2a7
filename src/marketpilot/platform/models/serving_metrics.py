"""Per-model Prometheus metrics: requests, errors, latency, batch sizes, prediction values,
shadow predictions and A/B assignments, labelled by model and version.

Registered on the caller's :class:`~prometheus_client.CollectorRegistry` (the app's, so
`/metrics` shows them) or on a private one. Label values are only ever names and versions
the server has loaded, never a name taken from a request, so a client probing unknown
models cannot grow the series without bound.

The prediction distribution is a histogram of every output value. prometheus_client's
`Histogram.observe` takes one value and a lock per call, which for a 1,000-row batch would
cost more than the prediction; :class:`PredictionHistogram` bins a whole output array with
one `searchsorted` + `bincount` under one lock, and renders standard histogram samples.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from marketpilot.platform.monitoring.metrics import LATENCY_BUCKETS

# Model calls are often well under a millisecond: two finer buckets below the HTTP ones.
MODEL_LATENCY_BUCKETS = (0.0001, 0.00025, *LATENCY_BUCKETS)
# Dense on [0, 1] where probabilities and scores live, coarse beyond for regressions; negative
# values count in the first bucket. (With negative bounds, OpenMetrics forbids exposing the
# sum and count, and prometheus_client drops them: pass such buckets only if you need them.)
PREDICTION_BUCKETS = (
    0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 2.5, 10.0, 100.0, 1000.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_SMALL = 8


class PredictionHistogram(Collector):
    """A histogram of output values per (model, version, output), filled array-at-a-time.

    NaNs are not counted (they have no bucket and would turn the sum into NaN).
    """

    name = "marketpilot_model_prediction"
    documentation = "Distribution of the values a model outputs (every element of every numeric output)."
    labels = ("model", "version", "output")

    def __init__(self, buckets: Sequence[float] = PREDICTION_BUCKETS) -> None:
        bounds = np.asarray(sorted(float(b) for b in buckets), dtype=np.float64)
        if bounds.size == 0 or np.unique(bounds).size != bounds.size:
            raise ValueError("prediction buckets must be distinct and non-empty")
        self._bounds = bounds
        self._edges = bounds.tolist()
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._lock = threading.Lock()

    def observe(self, model: str, version: str, output: str, values: np.ndarray) -> None:
        if values.dtype.kind not in "biuf" or values.size == 0:
            return
        key = (model, version, output)
        series = self._series.get(key)
        if series is None:
            with self._lock:
                series = self._series.setdefault(key, _Series(self._bounds.size + 1))
        if values.size <= _SMALL:  # one-row requests: plain Python beats five numpy calls
            small = [v for v in values.reshape(-1).tolist() if v == v]  # v == v drops NaN
            series.add_each([bisect_left(self._edges, v) for v in small], float(sum(small)))
            return
        flat = values.reshape(-1).astype(np.float64, copy=False)
        if flat.dtype.kind == "f" and np.isnan(flat).any():
            flat = flat[~np.isnan(flat)]
        counts = np.bincount(np.searchsorted(self._bounds, flat, side="left"), minlength=self._bounds.size + 1)
        series.add(counts, float(flat.sum()))

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        edges = [_bound(b) for b in self._bounds] + ["+Inf"]
        for key, series in sorted(self._series.items()):
            counts, total = series.snapshot()
            cumulative = np.cumsum(counts).tolist()
            family.add_metric(list(key), buckets=list(zip(edges, cumulative, strict=True)), sum_value=total)
        yield family


class _Series:
    __slots__ = ("_counts", "_sum", "_lock")

    def __init__(self, size: int) -> None:
        self._counts = np.zeros(size, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()

    def add(self, counts: np.ndarray, total: float) -> None:
        with self._lock:
            self._counts += counts
            self._sum += total

    def add_each(self, indices: list[int], total: float) -> None:
        with self._lock:
            for i in indices:
                self._counts[i] += 1
            self._sum += total

    def snapshot(self) -> tuple[np.ndarray, float]:
        with self._lock:
            return self._counts.copy(), self._sum


def _bound(value: float) -> str:
    return repr(float(value))


class ModelMetrics:
    """Every serving metric of one model server."""

    def __init__(self, registry: CollectorRegistry, *, prediction_buckets: Sequence[float] = PREDICTION_BUCKETS) -> None:
        labels = ("model", "version")
        self.requests = Counter(
            "marketpilot_model_requests", "Inference requests answered by a model version.", labels, registry=registry
        )
        self.errors = Counter(
            "marketpilot_model_errors",
            "Inference requests a model version failed: `invalid_input` (the caller's) or `predict` (the model's).",
            (*labels, "reason"),
            registry=registry,
        )
        self.latency = Histogram(
            "marketpilot_model_inference_duration_seconds",
            "Time to answer one inference request in the model server (batching wait included, HTTP excluded).",
            labels,
            buckets=MODEL_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "marketpilot_model_batch_rows",
            "Rows per call of the model's predict function (grows when micro-batching merges requests).",
            labels,
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.shadow = Counter(
            "marketpilot_model_shadow_predictions",
            "Shadow predictions of a challenger: `ok`, `error`, or `dropped` (shadow queue full).",
            (*labels, "outcome"),
            registry=registry,
        )
        self.assignments = Counter(
            "marketpilot_model_ab_assignments",
            "Requests assigned to an A/B arm (A: champion, B: challenger).",
            (*labels, "arm"),
            registry=registry,
        )
        self.predictions = PredictionHistogram(prediction_buckets)
        registry.register(self.predictions)
        # `.labels()` takes a lock and builds a key per call; keep the children instead.
        self._answered: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._batch: dict[tuple[str, str], Histogram] = {}

    def answered(self, model: str, version: str, seconds: float, outputs: Mapping[str, np.ndarray]) -> None:
        key = (model, version)
        children = self._answered.get(key)
        if children is None:
            children = (self.requests.labels(model, version), self.latency.labels(model, version))
            self._answered[key] = children
        children[0].inc()
        children[1].observe(seconds)
        self.observe_outputs(model, version, outputs)

    def observe_outputs(self, model: str, version: str, outputs: Mapping[str, np.ndarray]) -> None:
        for name, values in outputs.items():
            self.predictions.observe(model, version, name, values)

    def failed(self, model: str, version: str, reason: str) -> None:
        self.errors.labels(model, version, reason).inc()

    def batch(self, model: str, version: str, rows: int) -> None:
        child = self._batch.get((model, version))
        if child is None:
            child = self._batch[(model, version)] = self.batch_rows.labels(model, version)
        child.observe(rows)

    def shadowed(self, model: str, version: str, outcome: str) -> None:
        self.shadow.labels(model, version, outcome).inc()

    def assigned(self, model: str, version: str, arm: str) -> None:
        self.assignments.labels(model, version, arm).inc()
