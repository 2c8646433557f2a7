"""Drift detection: is live traffic still distributed like the data a model was trained on?

At training time, summarise the training data::

    reference = Reference.fit(X_train, model.predict(X_train), names=FEATURES, categorical=["region"])
    registry.log_training_run("fraud", ..., extra_files=[reference.save(tmp / "drift-reference.npz")])

At serving time, one monitor per process records every scored request (cheap: a row written
into a preallocated array), cuts the stream into event-time windows, and a background
drain evaluates each closed window::

    monitor = DriftMonitor(db, source=settings.event_source, window=WindowSpec.every(timedelta(minutes=5)),
                           gauges=DriftGauges(metrics.registry), service=drift_service)
    fraud = monitor.register("fraud", reference, version="7")
    fraud.record(features, score, at=event_time)               # request path
    monitor.start(interval=10.0)                               # or call monitor.drain() yourself

and capabilities ask ``drift_service.is_active("fraud")`` to fall back while drift lasts.

Per window and model the drain stores a report row (`drift_reports`), emits a
``marketpilot.drift.detected`` CloudEvent through the outbox in the same transaction when
the window drifted, and sets the gauges ``marketpilot_drift_psi{model,feature}`` and
``marketpilot_drift_active{model}``. Statistics and the decision rule:
:mod:`.drift_report`; windows: :mod:`.drift_windows`; docs/monitoring.md.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections import deque
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from marketpilot.platform.db import Database
from marketpilot.platform.monitoring.drift_reference import PREDICTION, FeatureReference, Kind, Reference
from marketpilot.platform.monitoring.drift_report import (
    DriftReport,
    DriftThresholds,
    FeatureDrift,
    Verdict,
    evaluate,
)
from marketpilot.platform.monitoring.drift_service import DriftService
from marketpilot.platform.monitoring.drift_store import save_report
from marketpilot.platform.monitoring.drift_windows import ClosedWindow, ModelRecorder, WindowSpec

__all__ = [
    "PREDICTION",
    "ClosedWindow",
    "DriftGauges",
    "DriftMonitor",
    "DriftReport",
    "DriftService",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureReference",
    "Kind",
    "ModelRecorder",
    "Reference",
    "UnknownModel",
    "Verdict",
    "WindowSpec",
    "evaluate",
]

log = logging.getLogger(__name__)


class UnknownModel(LookupError):
    """No reference is registered with the monitor under this model name."""


class DriftGauges:
    """The drift metrics of one Prometheus registry (pass the app's, e.g. `Metrics.registry`).

    Set from evaluated windows only: an ``insufficient`` window counts in
    ``marketpilot_drift_windows_total`` but leaves PSI and the active flag as they were.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.psi = Gauge(
            "marketpilot_drift_psi",
            "Population Stability Index of a model's feature (or prediction) over its latest evaluated window.",
            ("model", "feature"),
            registry=registry,
        )
        self.active = Gauge(
            "marketpilot_drift_active",
            "1 while the latest evaluated window of the model drifted, else 0.",
            ("model",),
            registry=registry,
        )
        self.windows = Counter(
            "marketpilot_drift_windows", "Closed drift windows, by verdict.", ("model", "verdict"), registry=registry
        )

    def update(self, report: DriftReport) -> None:
        self.windows.labels(report.model, report.verdict).inc()
        if report.verdict == "insufficient":
            return
        for feature in report.features:
            self.psi.labels(report.model, feature.name).set(feature.psi)
        self.active.labels(report.model).set(1.0 if report.drifted else 0.0)


class DriftMonitor:
    """Windows of live traffic per model, evaluated against each model's reference.

    `instance` names this process in stored reports (replicas each window their own share
    of traffic). `seed` makes reservoir sampling of over-full time windows reproducible.
    Recording is thread-safe; so is `drain`, which evaluates windows one at a time.
    """

    def __init__(
        self,
        db: Database,
        *,
        source: str,
        window: WindowSpec,
        thresholds: DriftThresholds | None = None,
        gauges: DriftGauges | None = None,
        service: DriftService | None = None,
        instance: str = "default",
        seed: int = 0,
    ) -> None:
        self.db = db
        self.source = source
        self.window = window
        self.thresholds = thresholds or DriftThresholds()
        self.gauges = gauges
        self.service = service
        self.instance = instance
        self.seed = seed
        self._recorders: dict[str, ModelRecorder] = {}
        self._pending: deque[ClosedWindow] = deque()
        self._drain_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, model: str, reference: Reference, *, version: str | None = None) -> ModelRecorder:
        """Monitor `model` against `reference` from now on; returns its recorder (keep it on
        the request path to skip a dict lookup). Registering again (a new model version)
        closes the open window, which is still judged against the old reference."""
        previous = self._recorders.get(model)
        if previous is not None:
            previous.close()
        recorder = ModelRecorder(
            model, reference, self.window, self._pending.append, version=version,
            seed=self.seed ^ zlib.crc32(model.encode()),
        )
        self._recorders[model] = recorder
        return recorder

    def recorder(self, model: str) -> ModelRecorder:
        try:
            return self._recorders[model]
        except KeyError:
            raise UnknownModel(f"no drift reference registered for model {model!r}") from None

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._recorders)

    def record(
        self, model: str, features: Sequence[float] | np.ndarray, prediction: float, at: datetime | float
    ) -> None:
        self.recorder(model).record(features, prediction, at)

    def advance(self, watermark: datetime | float) -> None:
        """Close every time window that ended at or before `watermark` (see `ModelRecorder.advance`)."""
        for recorder in list(self._recorders.values()):
            recorder.advance(watermark)

    def close_windows(self) -> None:
        """Close every open window now (before shutdown, or to flush a partial count window)."""
        for recorder in list(self._recorders.values()):
            recorder.close()

    @property
    def pending(self) -> int:
        """Closed windows not yet evaluated."""
        return len(self._pending)

    def drain(self) -> list[DriftReport]:
        """Evaluate, store and publish every closed window, oldest first; returns the stored reports.

        Each window is one transaction (report row + event). If storing fails the window
        stays queued and the error propagates, so the next drain retries it; a window whose
        statistics fail is dropped (retrying would fail again) and the error propagates.
        """
        stored: list[DriftReport] = []
        with self._drain_lock:
            while self._pending:
                window = self._pending[0]
                try:
                    report = evaluate(window, self.thresholds, instance=self.instance)
                except Exception:
                    self._pending.popleft()  # a window that cannot be evaluated must not block the rest
                    raise
                with self.db.session() as session:
                    saved, _event = save_report(session, report, self.source)
                self._pending.popleft()
                if self.gauges is not None:
                    self.gauges.update(saved)
                if self.service is not None:
                    self.service.remember(saved)
                if saved.drifted:
                    log.warning(
                        "drift detected for model %s in window %s..%s: %s",
                        saved.model, saved.window_start.isoformat(), saved.window_end.isoformat(),
                        ", ".join(saved.drifted_features),
                    )
                stored.append(saved)
        return stored

    def start(self, interval: float = 10.0) -> None:
        """Drain on a daemon thread every `interval` seconds until :meth:`stop`. The wall
        clock only paces the thread; windows follow event time."""
        if self._thread is not None:
            raise RuntimeError("drift monitor already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="drift-drain", daemon=True)
        self._thread.start()

    def stop(self, *, flush: bool = False) -> None:
        """Stop the drain thread; with `flush`, close open windows and drain them first."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if flush:
            self.close_windows()
            self.drain()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.drain()
            except Exception:
                log.exception("drift drain failed; the window stays queued and is retried")
