"""The model server: loaded models by name and version, behind one `infer` call.

Models are loaded from the registry by alias (`champion`, `challenger`) at start-up or on
:meth:`ModelServer.refresh`, never per request, and each becomes a :class:`ServedModel`: a
predict function over named numpy arrays plus the V2 metadata (platform, input and output
tensors with datatype and shape) derived from the model itself. Capabilities whose request
path is plain arrays rather than a registry flavour register a function directly
(:meth:`ModelServer.add_function`).

A request without an explicit version is routed by the model's traffic policy
(:mod:`.traffic`: champion only, canary, A/B, shadow); an explicit version or alias bypasses
it. Models may be micro-batched (:mod:`.batching`). Every answer is measured per model and
version (:mod:`.serving_metrics`).

State is copy-on-write: each model name maps to an immutable entry that writers (load,
refresh, traffic changes) replace under a lock, so the request path reads without locking
and a refresh never serves a half-updated model.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry

from marketpilot.platform.models.batching import BatchConfig, MicroBatcher, rows_of
from marketpilot.platform.models.records import CHALLENGER, CHAMPION, LoadedModel, ModelVersion
from marketpilot.platform.models.serving_errors import (
    InvalidInferenceRequest,
    ModelNotServed,
    TrafficConflict,
)
from marketpilot.platform.models.serving_metrics import ModelMetrics
from marketpilot.platform.models.serving_protocol import DATATYPES, datatype_of
from marketpilot.platform.models.traffic import (
    Assignment,
    AssignmentSink,
    Route,
    ShadowResult,
    ShadowRunner,
    ShadowSink,
    TrafficPolicy,
    log_assignment,
    log_shadow,
    route,
)

if TYPE_CHECKING:
    from marketpilot.platform.models.registry import ModelRegistry

log = logging.getLogger("marketpilot.serving")

PredictFn = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
Adapter = Callable[[LoadedModel], "ServedModel"]
SERVER_EXTENSIONS = ("binary_tensor_data", "model_traffic")


@dataclass(frozen=True, slots=True)
class Answer:
    """One answered request, as answer sinks (drift monitoring) see it."""

    model: str
    version: str
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]


AnswerSink = Callable[[Answer], None]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output tensor as V2 metadata describes it; -1 is a variable dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.datatype not in DATATYPES:
            raise ValueError(f"tensor {self.name!r}: unknown datatype {self.datatype!r}")
        if any(dim < -1 for dim in self.shape):
            raise ValueError(f"tensor {self.name!r}: dimensions are -1 (variable) or non-negative")

    @property
    def dtype(self) -> np.dtype[Any]:
        return DATATYPES[self.datatype]

    def check(self, array: np.ndarray) -> None:
        """InvalidInferenceRequest naming the tensor unless `array` fits this spec."""
        datatype = datatype_of(array.dtype)
        if datatype != self.datatype:
            raise InvalidInferenceRequest(f"input {self.name!r} has datatype {datatype}; the model takes {self.datatype}")
        if array.ndim != len(self.shape) or any(
            want not in (-1, got) for want, got in zip(self.shape, array.shape, strict=True)
        ):
            raise InvalidInferenceRequest(
                f"input {self.name!r} has shape {list(array.shape)}; the model takes {list(self.shape)} (-1: any size)"
            )


@dataclass(frozen=True, eq=False)
class ServedModel:
    """A model ready to answer: its predict function and its V2 metadata.

    `predict_fn` takes and returns named arrays and must not modify its inputs (a shadow
    challenger reads the same arrays). `row_independent` declares that output row i depends
    on input row i alone, which is what makes micro-batching and empty batches safe.
    `source` is the registry record the model was loaded from (None for a function).
    """

    name: str
    version: str
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    predict_fn: PredictFn
    row_independent: bool = False
    source: ModelVersion | None = None
    _input_names: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.inputs or not self.outputs:
            raise ValueError(f"model {self.name!r} must declare at least one input and one output")
        object.__setattr__(self, "_input_names", frozenset(spec.name for spec in self.inputs))

    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> int | None:
        """Validate names, datatypes and shapes; returns the batch size of a row-independent model."""
        if inputs.keys() != self._input_names:
            missing = sorted(self._input_names - inputs.keys())
            extra = sorted(inputs.keys() - self._input_names)
            problems = []
            if missing:
                problems.append(f"missing input(s) {', '.join(map(repr, missing))}")
            if extra:
                problems.append(f"unknown input(s) {', '.join(map(repr, extra))}")
            expected = ", ".join(repr(spec.name) for spec in self.inputs)
            raise InvalidInferenceRequest(
                f"model {self.name!r} version {self.version}: {'; '.join(problems)} (inputs: {expected})"
            )
        for spec in self.inputs:
            spec.check(inputs[spec.name])
        if not self.row_independent:
            return None
        try:
            return rows_of(inputs)
        except ValueError as exc:
            raise InvalidInferenceRequest(f"model {self.name!r}: {exc}") from None

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate `inputs`, then run the model (the in-process call the server makes)."""
        rows = self.check_inputs(inputs)
        if rows == 0:
            return {spec.name: np.empty([max(dim, 0) for dim in spec.shape], spec.dtype) for spec in self.outputs}
        return self.run(inputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on already-validated inputs; outputs cast to their declared datatypes."""
        raw = self.predict_fn(inputs)
        outputs: dict[str, np.ndarray] = {}
        for spec in self.outputs:
            value = raw.get(spec.name)
            if value is None:
                raise RuntimeError(f"model {self.name!r} version {self.version} did not return output {spec.name!r}")
            outputs[spec.name] = np.asarray(value).astype(spec.dtype, copy=False)
        return outputs


@dataclass(frozen=True, slots=True)
class Inference:
    """The answer to one request: which version answered, its outputs, and request parameters
    worth returning to the caller (the A/B arm)."""

    model_name: str
    model_version: str
    outputs: dict[str, np.ndarray]
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    """Everything served under one model name. Immutable: writers replace it whole."""

    name: str
    versions: Mapping[str, ServedModel] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> version
    policy: TrafficPolicy = field(default_factory=TrafficPolicy)
    batching: BatchConfig | None = None
    batchers: Mapping[str, MicroBatcher] = field(default_factory=dict)  # version -> batcher

    def resolve(self, ref: str) -> ServedModel:
        version = self.aliases.get(ref, ref)
        model = self.versions.get(version)
        if model is None:
            known = sorted(self.versions, key=_version_order)
            aliases = ", ".join(f"{a}={v}" for a, v in sorted(self.aliases.items())) or "none"
            raise ModelNotServed(
                f"model {self.name!r} has no version {ref!r} loaded (versions: {', '.join(known) or 'none'}; "
                f"aliases: {aliases})"
            )
        return model

    @property
    def has_challenger(self) -> bool:
        return CHALLENGER in self.aliases


@dataclass(frozen=True, slots=True)
class _RegistrySource:
    aliases: tuple[str, ...]
    adapter: Adapter | None


class ModelServer:
    """Loaded models and the policies that route requests between their versions.

    `metrics_registry` is where the per-model metrics go (pass the app's registry so
    `/metrics` shows them). Shadow predictions run on `shadow_workers` background threads
    with at most `shadow_queue` waiting; beyond that they are dropped and counted.
    """

    def __init__(
        self,
        *,
        name: str = "marketpilot",
        version: str | None = None,
        metrics_registry: CollectorRegistry | None = None,
        shadow_workers: int = 1,
        shadow_queue: int = 1000,
    ) -> None:
        self.name = name
        self.version = version if version is not None else _package_version()
        self.extensions = SERVER_EXTENSIONS
        self.metrics = ModelMetrics(metrics_registry if metrics_registry is not None else CollectorRegistry())
        self._entries: dict[str, _Entry] = {}
        self._sources: dict[str, _RegistrySource] = {}
        self._expected: frozenset[str] = frozenset()
        self._held: frozenset[str] = frozenset()
        self._lock = threading.RLock()
        self._shadow = ShadowRunner(workers=shadow_workers, max_pending=shadow_queue)
        self._shadow_sinks: list[ShadowSink] = []
        self._assignment_sinks: list[AssignmentSink] = [log_assignment]
        self._answer_sinks: list[AnswerSink] = []

    # -- registering models ------------------------------------------------------------

    def add(self, model: ServedModel, *, alias: str | None = CHAMPION) -> None:
        """Serve `model` (replacing a model of the same name and version) and point `alias` at it."""
        with self._lock:
            entry = self._entries.get(model.name) or _Entry(model.name)
            versions = {**entry.versions, model.version: model}
            aliases = dict(entry.aliases)
            if alias is not None:
                aliases[alias] = model.version
            self._install(replace(entry, versions=versions, aliases=aliases))

    def add_function(
        self,
        name: str,
        predict: PredictFn,
        *,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        version: str = "1",
        platform: str = "numpy",
        row_independent: bool = False,
        alias: str | None = CHAMPION,
    ) -> ServedModel:
        """Serve an in-process function over named arrays (a capability's precomputed request
        path, say) without going through the registry."""
        model = ServedModel(name, version, platform, tuple(inputs), tuple(outputs), predict, row_independent)
        self.add(model, alias=alias)
        return model

    def load(
        self,
        registry: ModelRegistry,
        name: str,
        *,
        aliases: Sequence[str] = (CHAMPION, CHALLENGER),
        adapter: Adapter | None = None,
    ) -> dict[str, ServedModel]:
        """Serve the versions of `name` that `aliases` point at in the registry, replacing the
        versions served under `name` (the traffic policy and batching stay). The champion must
        exist; other aliases are optional. A version already loaded is kept, not re-read
        (versions are immutable). `adapter` turns a loaded model into a :class:`ServedModel`
        (default: by flavour, see :mod:`.serving_adapters`). Returns the models by alias.
        """
        from marketpilot.platform.models.errors import ModelNotFound

        current = self._entries.get(name)
        loaded: dict[str, ServedModel] = {}
        for alias in aliases:
            try:
                record = registry.get(name, alias)
            except ModelNotFound:
                if alias == CHAMPION:
                    raise
                continue
            existing = None if current is None else current.versions.get(str(record.version))
            if existing is not None and existing.source is not None and existing.source.run_id == record.run_id:
                loaded[alias] = existing
                continue
            from marketpilot.platform.models.artifacts import load_model

            model = LoadedModel(version=record, model=load_model(registry.model_dir(record)))
            loaded[alias] = _adapt(model, adapter)
        with self._lock:
            entry = self._entries.get(name) or _Entry(name)
            self._install(
                replace(
                    entry,
                    versions={m.version: m for m in loaded.values()},
                    aliases={alias: m.version for alias, m in loaded.items()},
                )
            )
            self._sources[name] = _RegistrySource(tuple(aliases), adapter)
        log.info(
            "serving model %s: %s", name, ", ".join(f"{a}=v{m.version}" for a, m in loaded.items()),
            extra={"model": name, "aliases": {a: m.version for a, m in loaded.items()}},
        )  # fmt: skip
        return loaded

    def refresh(self, registry: ModelRegistry, names: Iterable[str] | None = None) -> list[str]:
        """Reload models loaded from the registry whose aliases moved (after a promotion or
        rollback); returns the names whose served versions changed."""
        changed = []
        for name in list(names if names is not None else self._sources):
            source = self._sources.get(name)
            if source is None:
                raise ModelNotServed(f"model {name!r} was not loaded from the registry")
            before = dict(self._entry(name).aliases)
            after = self.load(registry, name, aliases=source.aliases, adapter=source.adapter)
            if {a: m.version for a, m in after.items()} != before:
                changed.append(name)
        return changed

    def remove(self, name: str) -> None:
        with self._lock:
            entry = self._entries.pop(name, None)
            self._sources.pop(name, None)
        if entry is not None:
            for batcher in entry.batchers.values():
                batcher.close()

    def expect(self, names: Iterable[str]) -> None:
        """Names that must be loaded before the server reports ready (`/v2/health/ready`)."""
        self._expected = frozenset(names)

    def hold(self, name: str) -> None:
        """Keep reporting not ready for `name` even once loaded, until :meth:`settle`: what
        the loader does after installing a model (the drift watch) is part of being ready."""
        with self._lock:
            self._held = self._held | {name}

    def settle(self, name: str) -> None:
        with self._lock:
            self._held = self._held - {name}

    # -- configuration -----------------------------------------------------------------

    def set_traffic(self, name: str, policy: TrafficPolicy) -> TrafficPolicy:
        """Route `name`'s requests by `policy`. A policy that needs a challenger is refused
        while none is loaded (it would silently serve the champion only)."""
        with self._lock:
            entry = self._entry(name)
            if policy.needs_challenger and not entry.has_challenger:
                raise TrafficConflict(
                    f"model {name!r} has no challenger loaded; a {policy.mode} policy needs one "
                    "(set the registry's challenger alias, then refresh)"
                )
            self._install(replace(entry, policy=policy))
        log.info(
            "traffic policy of %s: %s %s%%", name, policy.mode, policy.percent,
            extra={"model": name, "mode": policy.mode, "percent": policy.percent, "salt": policy.salt},
        )  # fmt: skip
        return policy

    def traffic(self, name: str) -> TrafficPolicy:
        return self._entry(name).policy

    def set_batching(self, name: str, config: BatchConfig | None) -> None:
        """Micro-batch `name`'s row-independent versions with `config` (None: stop batching)."""
        with self._lock:
            entry = self._entry(name)
            if config is not None and not any(m.row_independent for m in entry.versions.values()):
                raise ValueError(f"model {name!r} is not row-independent; it cannot be micro-batched")
            self._install(replace(entry, batching=config))

    def on_shadow(self, sink: ShadowSink) -> None:
        """Call `sink` with every shadow result (on the shadow thread; keep it quick)."""
        self._shadow_sinks.append(sink)

    def on_assignment(self, sink: AssignmentSink) -> None:
        """Call `sink` with every A/B assignment (besides the structured log line)."""
        self._assignment_sinks.append(sink)

    def on_answer(self, sink: AnswerSink) -> None:
        """Call `sink` with every primary answer, on the request path (keep it quick: the
        drift monitor only copies rows into a preallocated window)."""
        self._answer_sinks.append(sink)

    # -- reading -----------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._entries)

    def versions(self, name: str) -> list[str]:
        return sorted(self._entry(name).versions, key=_version_order)

    def aliases(self, name: str) -> dict[str, str]:
        return dict(self._entry(name).aliases)

    def model(self, name: str, version: str | None = None) -> ServedModel:
        """The model answering for `version` (a version or an alias; None: the champion)."""
        entry = self._entry(name)
        return entry.resolve(CHAMPION if version is None else version)

    @property
    def ready(self) -> bool:
        """Every expected model has a champion loaded, and none is held (see :meth:`hold`)."""
        entries = self._entries
        return not self._held and all(name in entries and CHAMPION in entries[name].aliases for name in self._expected)

    # -- inference ---------------------------------------------------------------------

    async def infer(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: str | None = None,
        request_key: str | None = None,
        request_id: str | None = None,
    ) -> Inference:
        """Answer one request. `version` (a version or alias) bypasses the traffic policy;
        otherwise `request_key` (else `request_id`) is the sticky key of canary and A/B."""
        entry, model, chosen, rows = self._prepare(name, inputs, version, request_key, request_id)
        start = time.perf_counter()
        batcher = entry.batchers.get(model.version)
        try:
            if rows == 0:
                outputs = model.predict(inputs)
            elif batcher is not None:
                outputs = await batcher.submit(inputs)
            else:
                outputs = model.run(inputs)
                self.metrics.batch(name, model.version, rows or 1)
        except Exception:
            self.metrics.failed(name, model.version, "predict")
            raise
        return self._finish(entry, model, chosen, inputs, outputs, start, request_key, request_id)

    def predict(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: str | None = None,
        request_key: str | None = None,
        request_id: str | None = None,
    ) -> Inference:
        """:meth:`infer` for synchronous callers; never micro-batched."""
        entry, model, chosen, rows = self._prepare(name, inputs, version, request_key, request_id)
        start = time.perf_counter()
        try:
            outputs = model.predict(inputs) if rows == 0 else model.run(inputs)
        except Exception:
            self.metrics.failed(name, model.version, "predict")
            raise
        self.metrics.batch(name, model.version, rows or 1)
        return self._finish(entry, model, chosen, inputs, outputs, start, request_key, request_id)

    def drain_shadow(self, timeout: float | None = None) -> bool:
        """Wait for queued shadow predictions (tests, orderly shutdown); False on timeout."""
        return self._shadow.drain(timeout)

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            for batcher in entry.batchers.values():
                batcher.close()
        self._shadow.close()

    # -- internals ---------------------------------------------------------------------

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            # Not listing the served names: this message also answers the open `/ready` routes.
            raise ModelNotServed(f"no model named {name!r} is served here")
        return entry

    def _prepare(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        version: str | None,
        request_key: str | None,
        request_id: str | None,
    ) -> tuple[_Entry, ServedModel, Route | None, int | None]:
        entry = self._entry(name)
        chosen: Route | None = None
        if version is None:
            if CHAMPION not in entry.aliases:
                raise ModelNotServed(f"model {name!r} has no champion loaded; ask for a version explicitly")
            key = request_key if request_key is not None else request_id
            chosen = route(entry.policy, name, key, has_challenger=entry.has_challenger)
            model = entry.versions[entry.aliases[chosen.alias]]
        else:
            model = entry.resolve(version)
        try:
            rows = model.check_inputs(inputs)
        except InvalidInferenceRequest:
            self.metrics.failed(name, model.version, "invalid_input")
            raise
        return entry, model, chosen, rows

    def _finish(
        self,
        entry: _Entry,
        model: ServedModel,
        chosen: Route | None,
        inputs: Mapping[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        start: float,
        request_key: str | None,
        request_id: str | None,
    ) -> Inference:
        self.metrics.answered(entry.name, model.version, time.perf_counter() - start, outputs)
        if self._answer_sinks:
            answer = Answer(entry.name, model.version, inputs, outputs)
            for answer_sink in self._answer_sinks:
                _call_sink(answer_sink, answer)
        parameters: dict[str, Any] = {}
        if chosen is not None and chosen.arm is not None:
            parameters["ab_arm"] = chosen.arm
            self.metrics.assigned(entry.name, model.version, chosen.arm)
            assignment = Assignment(entry.name, chosen.arm, model.version, request_key, request_id)
            for sink in self._assignment_sinks:
                _call_sink(sink, assignment)
        if chosen is not None and chosen.shadow:
            self._submit_shadow(entry, model, inputs, outputs, request_key, request_id)
        return Inference(entry.name, model.version, outputs, parameters)

    def _submit_shadow(
        self,
        entry: _Entry,
        primary: ServedModel,
        inputs: Mapping[str, np.ndarray],
        primary_outputs: dict[str, np.ndarray],
        request_key: str | None,
        request_id: str | None,
    ) -> None:
        challenger = entry.versions[entry.aliases[CHALLENGER]]

        def work() -> None:
            start = time.perf_counter()
            outputs: dict[str, np.ndarray] | None = None
            error = None
            try:
                outputs = challenger.predict(inputs)
            except Exception as exc:  # a failing challenger must never reach the client
                error = f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - start
            self.metrics.shadowed(entry.name, challenger.version, "ok" if error is None else "error")
            if outputs is not None:
                self.metrics.observe_outputs(entry.name, challenger.version, outputs)
            result = ShadowResult(
                entry.name, challenger.version, primary.version, request_key, request_id,
                outputs, primary_outputs, seconds, error,
            )  # fmt: skip
            log_shadow(result)
            for sink in self._shadow_sinks:
                _call_sink(sink, result)

        if not self._shadow.submit(work):
            self.metrics.shadowed(entry.name, challenger.version, "dropped")

    def _install(self, entry: _Entry) -> None:
        """Publish `entry` (caller holds the lock), keeping batchers in step with its versions."""
        old = self._entries.get(entry.name)
        old_batchers = dict(old.batchers) if old is not None else {}
        batchers: dict[str, MicroBatcher] = {}
        if entry.batching is not None:
            for version, model in entry.versions.items():
                if not model.row_independent:
                    continue
                batcher = old_batchers.pop(version, None)
                if batcher is not None and batcher.predict == model.run and batcher.config == entry.batching:
                    batchers[version] = batcher
                else:
                    if batcher is not None:
                        batcher.close()
                    batchers[version] = MicroBatcher(
                        model.run, entry.batching, on_batch=_batch_counter(self.metrics, entry.name, version)
                    )
        for batcher in old_batchers.values():
            batcher.close()
        if entry.policy.needs_challenger and CHALLENGER not in entry.aliases:
            log.warning("model %s lost its challenger; traffic policy falls back to the champion", entry.name)
        self._entries[entry.name] = replace(entry, batchers=batchers)


def _adapt(loaded: LoadedModel, adapter: Adapter | None) -> ServedModel:
    if adapter is not None:
        return adapter(loaded)
    from marketpilot.platform.models.serving_adapters import adapt

    return adapt(loaded)


def _batch_counter(metrics: ModelMetrics, name: str, version: str) -> Callable[[int], None]:
    def count(rows: int) -> None:
        metrics.batch(name, version, rows)

    return count


def _call_sink(sink: Callable[[Any], None], value: object) -> None:
    try:
        sink(value)
    except Exception:
        log.exception("serving sink %r failed", sink)


def _version_order(version: str) -> tuple[int, float, str]:
    return (0, float(version), "") if version.isdigit() else (1, math.inf, version)


def _package_version() -> str:
    from marketpilot import __version__

    return __version__
