"""Drift monitoring of served models: each champion's live answers against its training reference.

A trainer that passes a drift reference to the registry (``TrainedModel.reference``) has it
stored with the run as ``extra/drift-reference.npz``. When the model server loads a champion
from the registry, :meth:`ServedDrift.on_load` finds that file and registers the version with
the process's :class:`~marketpilot.platform.monitoring.drift.DriftMonitor`; from then on every
answer of that version (:meth:`ModelServer.on_answer`) is recorded row by row, stamped with
its arrival time, and the monitor's drain turns closed windows into reports and
``DriftDetected`` events. Capabilities ask ``runtime.drift.is_active(name)`` to fall back.

Which tensors are recorded: the single 2-D input whose width equals the reference's feature
count (the layout the LightGBM and scikit-learn adapters serve), and as the prediction the
first output's last column (the positive-class probability of a ``(-1, 2)`` output, the score
of a ``(-1,)`` or ``(-1, 1)`` output). A version whose tensors do not fit its reference is
logged and not monitored, rather than failing requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marketpilot.platform.models.serving import Answer, ModelServer
from marketpilot.platform.models.training import REFERENCE_FILE
from marketpilot.platform.monitoring.drift import DriftMonitor
from marketpilot.platform.monitoring.drift_reference import Reference
from marketpilot.platform.monitoring.drift_windows import ModelRecorder

if TYPE_CHECKING:
    from marketpilot.platform.models.registry import ModelRegistry

log = logging.getLogger("marketpilot.serving.drift")


class ReferenceMismatch(ValueError):
    """The served model's tensors do not fit the drift reference it was registered with."""


@dataclass(frozen=True, slots=True)
class _Watch:
    version: str
    input: str
    output: str
    recorder: ModelRecorder


class ServedDrift:
    """Feeds `server`'s answers to `monitor` for the versions registered with :meth:`watch`."""

    def __init__(self, server: ModelServer, monitor: DriftMonitor, *, clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.monitor = monitor
        self._clock = clock
        self._watched: dict[str, _Watch] = {}
        server.on_answer(self.record)

    @property
    def watched(self) -> dict[str, str]:
        """Monitored model names and the version each is monitored for."""
        return {name: w.version for name, w in self._watched.items()}

    def on_load(self, registry: ModelRegistry, name: str) -> None:
        """Hook for the registry watcher: monitor the champion just loaded, if it has a reference."""
        served = self.server.model(name)
        if served.source is None:
            return
        path = registry.extra_file(served.source, REFERENCE_FILE)
        if path is None:
            log.info("model %s v%s has no drift reference; not monitored", name, served.version)
            self._watched.pop(name, None)
            return
        try:
            self.watch(name, served.version, Reference.load(path))
        except ReferenceMismatch:
            log.exception("model %s v%s: drift reference does not fit the served tensors; not monitored", name, served.version)
            self._watched.pop(name, None)

    def watch(self, name: str, version: str, reference: Reference) -> None:
        """Monitor version `version` of served model `name` against `reference`."""
        model = self.server.model(name, version)
        width = len(reference.features)
        inputs = [s for s in model.inputs if len(s.shape) == 2 and s.shape[1] in (-1, width)]
        if len(inputs) != 1 or not model.outputs:
            raise ReferenceMismatch(
                f"model {name!r} v{version}: needs exactly one 2-D input of width {width} and an output; "
                f"has inputs {[(s.name, list(s.shape)) for s in model.inputs]}"
            )
        recorder = self.monitor.register(name, reference, version=version)
        self._watched[name] = _Watch(version, inputs[0].name, model.outputs[0].name, recorder)
        log.info("monitoring drift of model %s v%s (%d features)", name, version, width)

    def record(self, answer: Answer) -> None:
        """Answer sink: record each row of a monitored version's answer."""
        watch = self._watched.get(answer.model)
        if watch is None or watch.version != answer.version:
            return
        # At float32 precision, as the reference was fitted (see `Reference.fit`).
        features = np.asarray(answer.inputs[watch.input], dtype=np.float32).astype(np.float64)
        scores = np.asarray(answer.outputs[watch.output], dtype=np.float32).astype(np.float64)
        if scores.ndim == 2:
            scores = scores[:, -1]
        if features.ndim != 2 or scores.shape != (features.shape[0],):
            return
        if features.shape[1] != watch.recorder.width - 1:
            return
        watch.recorder.record_many(features, scores, np.full(len(scores), self._clock()))
