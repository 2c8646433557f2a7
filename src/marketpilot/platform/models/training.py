"""Training: the contract a capability's trainer fulfils, the registry of trainers, `run_training`.

A capability registers one :class:`Trainer` under its model name ("fraud", "recommend",
the built-in "click"). The trainer chooses its sources and features; the machinery here
owns what every model must share, so results stay comparable across capabilities:

- **a time-ordered holdout**: ``load_data(source, as_of, holdout_fraction)`` reads only rows
  before `as_of` and holds out the *latest* `holdout_fraction` of them by event time
  (:meth:`Examples.split_by_time`). A random split would let a model learn from the future
  it is scored on, and would rank a stale model as well as a fresh one;
- **one primary metric with a direction** (:class:`MetricGoal`), so a retraining run can
  decide mechanically whether a challenger beats the champion;
- **lineage**: every version is registered with its parameters, holdout metrics, the
  fingerprint of its data, the time cut-off and split sizes, and the code version.

::

    from marketpilot.platform.models.training import run_training

    result = run_training("click", runtime)       # load -> train -> evaluate -> register
    result.version.version, result.metrics["auc"]

Durable, champion-vs-challenger retraining on top of these pieces is
:mod:`marketpilot.platform.models.retraining`.
"""

from __future__ import annotations

import importlib
import math
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import numpy as np

from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.platform.models.fingerprints import fingerprint

if TYPE_CHECKING:
    from marketpilot.platform.models.records import ModelVersion
    from marketpilot.platform.models.registry import ModelRegistry
    from marketpilot.platform.monitoring.drift_reference import Reference

__all__ = [
    "DataSource",
    "DataSummary",
    "Examples",
    "InsufficientData",
    "MetricGoal",
    "TrainedModel",
    "Trainer",
    "TrainingData",
    "TrainingResult",
    "UnknownTrainer",
    "evaluate_model",
    "get_trainer",
    "load_training_data",
    "register_trainer",
    "register_version",
    "run_training",
    "trainer_names",
]

T = TypeVar("T")
Direction = Literal["higher", "lower"]
ParamValue = str | int | float | bool

DEFAULT_HOLDOUT_FRACTION = 0.2
REFERENCE_FILE = "drift-reference.npz"
# Lineage tags every version trained here carries (the registry reserves `marketpilot.`).
TAG_AS_OF = "training.as_of"
TAG_HOLDOUT_START = "training.holdout_start"
TAG_TRAIN_ROWS = "training.train_rows"
TAG_HOLDOUT_ROWS = "training.holdout_rows"
TAG_TRAINER = "training.trainer"

# Trainers that ship with marketpilot, imported on first use so that importing this module
# (the CLI, the API) does not import LightGBM.
_BUILTIN: dict[str, str] = {
    "click": "marketpilot.platform.models.retraining_click:ClickTrainer",
    "recommend": "marketpilot.recommend.trainer:RecommendTrainer",
    "fraud": "marketpilot.fraud.train:FraudTrainer",
}


class InsufficientData(ValueError):
    """Too little data to train or to hold out; the message says what is missing."""


class UnknownTrainer(LookupError):
    """No trainer is registered under this name; the message lists the known ones."""


class DataSource(Protocol):
    """Where a trainer reads from: a :class:`~marketpilot.runtime.Runtime` is one."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...


@dataclass(frozen=True, slots=True)
class MetricGoal:
    """The metric a model is judged by, and whether higher or lower values are better."""

    name: str
    direction: Direction

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"direction must be 'higher' or 'lower', got {self.direction!r}")

    def improvement(self, challenger: float, champion: float) -> float:
        """How much better `challenger` is than `champion` (negative when worse)."""
        return challenger - champion if self.direction == "higher" else champion - challenger


@dataclass(frozen=True, eq=False)
class Examples:
    """Rows of a tabular model in event-time order.

    `features` has shape ``(n, d)`` (float64, NaN for missing), `labels` shape ``(n,)``,
    `times` shape ``(n,)`` as ``datetime64[us]`` in UTC, non-decreasing. Columns named in
    `categorical` hold integer category codes.
    """

    features: np.ndarray
    labels: np.ndarray
    times: np.ndarray
    feature_names: tuple[str, ...]
    categorical: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.labels.shape[0] if self.labels.ndim == 1 else -1
        if self.features.ndim != 2 or self.features.shape[0] != n or self.times.shape != (n,):
            raise ValueError(
                f"examples: features {self.features.shape}, labels {self.labels.shape} and times "
                f"{self.times.shape} must be (n, d), (n,) and (n,)"
            )
        if len(self.feature_names) != self.features.shape[1]:
            raise ValueError(f"examples: {len(self.feature_names)} names for {self.features.shape[1]} columns")
        if not np.issubdtype(self.times.dtype, np.datetime64):
            raise TypeError(f"examples: times must be datetime64, got {self.times.dtype}")
        if n > 1 and bool(np.any(self.times[1:] < self.times[:-1])):
            raise ValueError("examples: times must be non-decreasing (sort rows by event time)")
        unknown = set(self.categorical) - set(self.feature_names)
        if unknown:
            raise ValueError(f"examples: categorical columns {sorted(unknown)} are not feature names")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def rows(self, start: int, stop: int) -> Examples:
        return replace(
            self, features=self.features[start:stop], labels=self.labels[start:stop], times=self.times[start:stop]
        )

    def split_by_time(self, holdout_fraction: float) -> tuple[Examples, Examples]:
        """(train, holdout): the holdout is the latest `holdout_fraction` of the rows.

        Rows sharing the boundary timestamp all go to the holdout, so every training row is
        strictly earlier than every holdout row.
        """
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be between 0 and 1 (exclusive), got {holdout_fraction}")
        n = len(self)
        held = math.ceil(n * holdout_fraction)
        if n < 2 or held < 1:
            raise InsufficientData(f"need at least 2 rows to hold some out, got {n}")
        boundary = self.times[n - held]
        start = int(np.searchsorted(self.times, boundary, side="left"))
        if start == 0:
            raise InsufficientData(
                f"all {n} rows are at or after {_iso(boundary)}: no earlier rows to train on"
            )
        return self.rows(0, start), self.rows(start, n)

    def fingerprint(self) -> str:
        return fingerprint(
            {"features": self.features, "labels": self.labels, "times": self.times.astype("datetime64[us]")},
            np.array(self.feature_names),
            np.array(self.categorical, dtype=str),
        )


@dataclass(frozen=True, slots=True)
class DataSummary:
    """What identifies the data of one training run, without the data.

    Small and picklable: the retraining workflow checkpoints it, and a step resumed in
    another process re-reads the data with `as_of` and checks `fingerprint`.
    """

    as_of: datetime
    holdout_start: datetime
    train_rows: int
    holdout_rows: int
    fingerprint: str

    def tags(self) -> dict[str, str]:
        return {
            TAG_AS_OF: self.as_of.isoformat(),
            TAG_HOLDOUT_START: self.holdout_start.isoformat(),
            TAG_TRAIN_ROWS: str(self.train_rows),
            TAG_HOLDOUT_ROWS: str(self.holdout_rows),
        }


@dataclass(frozen=True, eq=False)
class TrainingData(Generic[T]):
    """Training rows and the time-ordered holdout a trainer's `load_data` returns."""

    train: T
    holdout: T
    summary: DataSummary

    @classmethod
    def from_examples(cls, examples: Examples, *, as_of: datetime, holdout_fraction: float) -> TrainingData[Examples]:
        """Split tabular `examples` by time; the fingerprint covers both parts in order."""
        if len(examples) and examples.times[-1] >= np.datetime64(_naive_utc(as_of), "us"):
            raise ValueError(f"examples: rows at or after as_of {as_of.isoformat()} were loaded")
        train, holdout = examples.split_by_time(holdout_fraction)
        summary = DataSummary(
            as_of=as_of,
            holdout_start=_to_datetime(holdout.times[0]),
            train_rows=len(train),
            holdout_rows=len(holdout),
            fingerprint=examples.fingerprint(),
        )
        return TrainingData(train=train, holdout=holdout, summary=summary)


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """What `Trainer.train` returns.

    `model` must be storable by the registry (a LightGBM `Booster`, a scikit-learn
    estimator or an `ArrayBundle`); `params` are recorded with the version; `reference`,
    if given, summarises the training inputs for drift monitoring and is stored beside the
    model as ``extra/drift-reference.npz``.
    """

    model: object
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    reference: Reference | None = None


class Trainer(ABC, Generic[T]):
    """A capability's training recipe. Subclass it and :func:`register_trainer` an instance.

    `name` is the registered model name. `goal` is the primary holdout metric, which
    `evaluate` must return (other metrics are recorded too). `default_margin` is how much
    (in the metric's units) a challenger must beat the champion by to be promoted
    automatically, unless the retraining policy overrides it: large enough to ignore the
    noise of one holdout, small enough that real gains ship.

    `train` and `evaluate` must be deterministic for the same data (fix seeds and thread
    counts): a retraining step resumed after a crash may train again, and must get the
    model it would have got.
    """

    name: str
    goal: MetricGoal
    default_margin: float = 0.0

    @abstractmethod
    def load_data(self, source: DataSource, as_of: datetime, holdout_fraction: float) -> TrainingData[T]:
        """Rows before `as_of`, split by time (``TrainingData.from_examples`` does the split)."""

    @abstractmethod
    def train(self, data: T) -> TrainedModel:
        """Fit a model on the training part."""

    @abstractmethod
    def evaluate(self, model: object, holdout: T) -> Mapping[str, float]:
        """Metrics of `model` (this run's or a stored champion) on `holdout`."""


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """One finished `run_training`: the registered version and its holdout metrics."""

    version: ModelVersion
    metrics: Mapping[str, float]
    data: DataSummary


# -- the registry of trainers ---------------------------------------------------------------

_trainers: dict[str, Trainer[Any]] = {}
_lock = threading.Lock()


def register_trainer(trainer: Trainer[Any], *, replace: bool = False) -> Trainer[Any]:
    """Make `trainer` the one for its model name. Registering a name twice is an error
    unless `replace` (tests and notebooks swap recipes; a process should not by accident)."""
    if not isinstance(trainer, Trainer):
        raise TypeError(f"{trainer!r} is not a Trainer")
    name = getattr(trainer, "name", None)
    goal = getattr(trainer, "goal", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"trainer {type(trainer).__name__} has no model name")
    if not isinstance(goal, MetricGoal):
        raise ValueError(f"trainer {name!r} has no MetricGoal (its primary metric)")
    if not (math.isfinite(trainer.default_margin) and trainer.default_margin >= 0):
        raise ValueError(f"trainer {name!r}: default_margin must be a finite number >= 0")
    with _lock:
        if name in _trainers and not replace and _trainers[name] is not trainer:
            raise ValueError(f"a trainer for model {name!r} is already registered")
        _trainers[name] = trainer
    return trainer


def get_trainer(name: str) -> Trainer[Any]:
    """The trainer registered for `name`; built-in trainers are created on first use."""
    with _lock:
        found = _trainers.get(name)
    if found is not None:
        return found
    target = _BUILTIN.get(name)
    if target is None:
        raise UnknownTrainer(f"no trainer for model {name!r} (known: {', '.join(trainer_names()) or 'none'})")
    module, _, attribute = target.partition(":")
    trainer: Trainer[Any] = getattr(importlib.import_module(module), attribute)()
    with _lock:
        return _trainers.setdefault(name, trainer)


def trainer_names() -> tuple[str, ...]:
    """Every model name a trainer is (or, for built-ins, can be) registered for."""
    with _lock:
        return tuple(sorted({*_trainers, *_BUILTIN}))


# -- the steps, shared by run_training and the retraining workflow ----------------------------


def load_training_data(
    trainer: Trainer[T], source: DataSource, as_of: datetime, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
) -> TrainingData[T]:
    """Call the trainer's `load_data` and check the split it returned is time-ordered."""
    as_of = _aware(as_of)
    data = trainer.load_data(source, as_of, holdout_fraction)
    summary = data.summary
    if summary.train_rows < 1 or summary.holdout_rows < 1:
        raise InsufficientData(
            f"model {trainer.name!r}: {summary.train_rows} training and {summary.holdout_rows} holdout rows before "
            f"{as_of.isoformat()}"
        )
    if not summary.holdout_start <= summary.as_of:
        raise ValueError(f"model {trainer.name!r}: holdout starts after as_of")
    return data


def evaluate_model(trainer: Trainer[T], model: object, holdout: T) -> dict[str, float]:
    """The trainer's metrics as plain floats; the primary metric must be among them."""
    metrics = {str(k): float(v) for k, v in trainer.evaluate(model, holdout).items()}
    if trainer.goal.name not in metrics:
        raise ValueError(
            f"trainer {trainer.name!r}: evaluate() returned {sorted(metrics)} without its primary metric "
            f"{trainer.goal.name!r}"
        )
    return metrics


def register_version(
    registry: ModelRegistry,
    trainer: Trainer[Any],
    data: DataSummary,
    trained: TrainedModel,
    metrics: Mapping[str, float],
    *,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register `trained` as a new version of the trainer's model, with its lineage."""
    recipe = f"{type(trainer).__module__}.{type(trainer).__qualname__}"
    all_tags = {**data.tags(), TAG_TRAINER: recipe, **(tags or {})}
    with tempfile.TemporaryDirectory(prefix="marketpilot-training-") as scratch:
        extra: list[Path] = []
        if trained.reference is not None:
            extra.append(trained.reference.save(Path(scratch) / REFERENCE_FILE))
        return registry.log_training_run(
            trainer.name,
            model=trained.model,
            params=dict(trained.params),
            # An undefined metric (e.g. AUC of a one-class holdout) is left out rather than stored as NaN.
            metrics={k: v for k, v in metrics.items() if math.isfinite(v)},
            data_fingerprint=data.fingerprint,
            tags=all_tags,
            extra_files=extra,
        )


def run_training(
    name: str,
    source: DataSource,
    *,
    registry: ModelRegistry | None = None,
    as_of: datetime | None = None,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    tags: Mapping[str, str] | None = None,
) -> TrainingResult:
    """Train model `name` once and register the version (no alias: promotion is separate).

    Reads data before `as_of` (default: now), trains on all but the latest
    `holdout_fraction` of it, scores the holdout, and registers the version with params,
    metrics, data fingerprint, split and code version. Opens the configured registry
    unless one is given.
    """
    from marketpilot.platform.models.registry import ModelRegistry

    trainer = get_trainer(name)
    data = load_training_data(trainer, source, as_of or datetime.now(UTC), holdout_fraction)
    trained = trainer.train(data.train)
    metrics = evaluate_model(trainer, trained.model, data.holdout)
    own = registry is None
    reg = ModelRegistry.from_settings(source.settings) if registry is None else registry
    try:
        version = register_version(reg, trainer, data.summary, trained, metrics, tags=tags)
    finally:
        if own:
            reg.close()
    return TrainingResult(version=version, metrics=metrics, data=data.summary)


# -- time helpers -----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    """UTC-aware; a naive value is taken as UTC (as the database returns them on SQLite)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _naive_utc(value: datetime) -> datetime:
    return _aware(value).replace(tzinfo=None)


def _to_datetime(value: np.datetime64) -> datetime:
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return _EPOCH + timedelta(microseconds=micros)


def _iso(value: np.datetime64) -> str:
    return _to_datetime(value).isoformat()
