"""Automated retraining: a durable champion-vs-challenger workflow on DBOS.

One run of :func:`retrain_workflow` is::

    load data -> train challenger -> evaluate challenger and champion on the same holdout
              -> register challenger (alias `challenger`) -> decide -> promote or not

Each arrow is a DBOS step whose result is checkpointed in DBOS's system database (SQLite
under the home directory, or the `dbos` schema of PostgreSQL; see
:mod:`.retraining_engine`). A process killed mid-run is resumed by the next process that
launches DBOS with the same executor id: finished steps are not run again, the interrupted
one is. So every step is written to be safe to run twice:

- **load** records the `as_of` cut-off and the data fingerprint. Later steps re-read the
  data with that cut-off when they run in a new process, and fail with
  :class:`DataChanged` rather than compare models on different data.
- **train** stages the model under ``HOME/retraining/<run>/``; a resumed step trains again
  (trainers are deterministic) if the staged files are gone.
- **register** first looks for a version tagged ``retrain.workflow_id=<this run>``, so a
  replay after a crash between "version created" and "step recorded" registers nothing new.
- **promote** re-reads the champion: already ours means an earlier attempt promoted; changed
  since evaluation means someone else chose a champion meanwhile, which the run respects.

The decision (:mod:`.retraining_decision`) is the workflow's output and is also written
as ``retrain.*`` tags on the challenger version. Triggers (a schedule, ``DriftDetected``
events) live in :mod:`.retraining_triggers`; they start this workflow with deterministic
workflow ids, which DBOS turns into "at most one run per id".

Every DBOS workflow of marketpilot's retraining is defined in this module, so every process
that imports it registers the same set, and so computes the same DBOS application version:
DBOS only resumes runs of its own application version.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbos import DBOS, SetWorkflowID

from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.platform.models import artifacts
from marketpilot.platform.models.errors import ArtifactError, ModelNotFound, RegistryError
from marketpilot.platform.models.records import CHALLENGER, CHAMPION
from marketpilot.platform.models.retraining_decision import (
    TAG_CAUSE,
    TAG_TRIGGER,
    TAG_WORKFLOW,
    Decision,
    Outcome,
    RetrainPolicy,
    Trigger,
    Verdict,
    decide,
)
from marketpilot.platform.models.training import (
    REFERENCE_FILE,
    DataSource,
    DataSummary,
    InsufficientData,
    ParamValue,
    TrainedModel,
    Trainer,
    TrainingData,
    evaluate_model,
    get_trainer,
    load_training_data,
    register_version,
)

if TYPE_CHECKING:
    from dbos import WorkflowHandle

    from marketpilot.platform.models.registry import ModelRegistry

__all__ = [
    "QUEUE",
    "RETRAIN_WORKFLOW",
    "DataChanged",
    "Decision",
    "RetrainPolicy",
    "RetrainRequest",
    "bind",
    "decisions",
    "retrain_workflow",
    "run_retraining",
    "runs_in_flight",
    "scheduled_retrain",
    "start_retraining",
    "unbind",
]

log = logging.getLogger(__name__)

RETRAIN_WORKFLOW = "marketpilot.retrain"
SCHEDULED_WORKFLOW = "marketpilot.retrain.scheduled"
QUEUE = "marketpilot-retraining"
_STAGING = "retraining"


class DataChanged(RuntimeError):
    """The data before a run's `as_of` changed between two of its steps (rows arrived late)."""


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """One retraining run of `model`. `cause` makes the workflow id: the drift event id, the
    scheduled time, or (manual runs) a fresh random id unless the caller names the run."""

    model: str
    trigger: Trigger = "manual"
    cause: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        if not self.cause.strip():
            raise ValueError("cause must not be empty: it makes the run's workflow id")

    @property
    def workflow_id(self) -> str:
        return f"retrain:{self.model}:{self.trigger}:{self.cause}"


@dataclass(frozen=True, slots=True)
class ScheduledRetrain:
    """The context a retraining schedule passes to :func:`scheduled_retrain` on every tick."""

    model: str
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)


@dataclass(frozen=True, slots=True)
class StagedChallenger:
    """Where the train step left the challenger, and what it was trained with."""

    directory: str
    params: dict[str, ParamValue]


@dataclass(frozen=True, slots=True)
class Scores:
    """Both models on the same holdout. `champion_version` None: there was no champion."""

    challenger: dict[str, float]
    champion_version: int | None = None
    champion: dict[str, float] = field(default_factory=dict)
    champion_error: str | None = None


# -- what the steps of this process work with ------------------------------------------------


class _Environment:
    """The settings, database and (opened on first use, since MLflow is slow to import)
    registry of the process's retraining steps. Also a trainer's `DataSource`."""

    def __init__(self, settings: Settings, db: Database, *, own_db: bool) -> None:
        self.settings = settings
        self.db = db
        self._own_db = own_db
        self._registry: ModelRegistry | None = None
        self._lock = threading.Lock()

    def registry(self) -> ModelRegistry:
        with self._lock:
            if self._registry is None:
                from marketpilot.platform.models.registry import ModelRegistry

                self._registry = ModelRegistry.from_settings(self.settings)
            return self._registry

    def close(self) -> None:
        with self._lock:
            if self._registry is not None:
                self._registry.close()
                self._registry = None
        if self._own_db:
            self.db.dispose()


_bound: _Environment | None = None
_bind_lock = threading.Lock()


def bind(source: DataSource | Settings) -> None:
    """Give this process's retraining steps their settings and database (a runtime's, or
    opened from bare settings). Call it before ``DBOS.launch()``: launching resumes
    interrupted runs at once, and their steps need it."""
    global _bound
    if isinstance(source, Settings):
        environment = _Environment(source, Database.from_settings(source), own_db=True)
    else:
        environment = _Environment(source.settings, source.db, own_db=False)
    with _bind_lock:
        previous, _bound = _bound, environment
    if previous is not None:
        previous.close()


def unbind() -> None:
    """Close what :func:`bind` opened (the runtime's database stays open)."""
    global _bound
    with _bind_lock:
        previous, _bound = _bound, None
    if previous is not None:
        previous.close()
    _datasets.clear()


class _InFlight:
    """Counts runs executing in this process, so shutting down does not pull the database
    from under a run that DBOS has not stopped (it is resumed at the next launch instead)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


_in_flight = _InFlight()


def runs_in_flight() -> int:
    """Retraining runs executing in this process right now."""
    return _in_flight.count


def _env() -> _Environment:
    environment = _bound
    if environment is None:
        raise RuntimeError(
            "retraining is not bound to a database: call marketpilot.platform.models.retraining.bind(runtime) "
            "before DBOS.launch()"
        )
    return environment


# -- the workflows ---------------------------------------------------------------------------


@DBOS.workflow(name=RETRAIN_WORKFLOW)
def retrain_workflow(request: RetrainRequest) -> Decision:
    """One retraining run (see the module docstring). Start it with a workflow id of
    ``request.workflow_id`` (`run_retraining` and `start_retraining` do)."""
    workflow_id = DBOS.workflow_id or request.workflow_id
    trainer = get_trainer(request.model)
    margin = request.policy.margin if request.policy.margin is not None else trainer.default_margin
    with _in_flight:
        try:
            data = _load_step(request, workflow_id)
            staged = _train_step(request, workflow_id, data)
        except InsufficientData as exc:
            return _skip_step(request, workflow_id, margin, str(exc))
        scores = _evaluate_step(request, workflow_id, data, staged)
        version = _register_step(request, workflow_id, data, staged, scores)
        verdict = _decide_step(request, scores, version, margin)
        return _promote_step(request, workflow_id, data, scores, version, verdict, margin)


@DBOS.workflow(name=SCHEDULED_WORKFLOW)
def scheduled_retrain(scheduled_at: datetime, context: ScheduledRetrain) -> None:
    """What a retraining schedule runs on each tick: one run, named after the tick, so a
    tick fired twice (two workers, a backfill) is still one run."""
    request = RetrainRequest(
        model=context.model, trigger="schedule", cause=scheduled_at.astimezone(UTC).isoformat(), policy=context.policy
    )
    with SetWorkflowID(request.workflow_id):
        retrain_workflow(request)


# -- the steps -------------------------------------------------------------------------------


def _transient(error: BaseException) -> bool:
    """Retry registry steps on infrastructure errors, not on bugs or bad data."""
    return not isinstance(error, ValueError | TypeError | LookupError | RegistryError)


@DBOS.step(name="marketpilot.retrain.load")
def _load_step(request: RetrainRequest, workflow_id: str) -> DataSummary:
    environment = _env()
    as_of = request.as_of or datetime.now(UTC)
    data = load_training_data(get_trainer(request.model), environment, as_of, request.policy.holdout_fraction)
    _datasets.put(workflow_id, data)
    return data.summary


@DBOS.step(name="marketpilot.retrain.train")
def _train_step(request: RetrainRequest, workflow_id: str, summary: DataSummary) -> StagedChallenger:
    trainer = get_trainer(request.model)
    data = _data(trainer, request, workflow_id, summary)
    return _stage(workflow_id, trainer.train(data.train))


@DBOS.step(name="marketpilot.retrain.evaluate")
def _evaluate_step(
    request: RetrainRequest, workflow_id: str, summary: DataSummary, staged: StagedChallenger
) -> Scores:
    trainer = get_trainer(request.model)
    data = _data(trainer, request, workflow_id, summary)
    challenger = _challenger(trainer, request, workflow_id, summary, staged)
    metrics = evaluate_model(trainer, challenger.model, data.holdout)
    try:
        champion = _env().registry().load_version(request.model, CHAMPION)
    except ModelNotFound:
        return Scores(challenger=metrics)
    except RegistryError as exc:  # e.g. the champion's files are unreadable
        return Scores(challenger=metrics, champion_version=_champion_number(request.model), champion_error=_brief(exc))
    try:
        return Scores(
            challenger=metrics,
            champion_version=champion.version.version,
            champion=evaluate_model(trainer, champion.model, data.holdout),
        )
    except Exception as exc:  # the champion's inputs no longer match the trainer's features
        log.warning("retraining %s: champion v%d cannot be scored: %s", request.model, champion.version.version, exc)
        return Scores(challenger=metrics, champion_version=champion.version.version, champion_error=_brief(exc))


@DBOS.step(name="marketpilot.retrain.register", retries_allowed=True, max_attempts=3, should_retry=_transient)
def _register_step(
    request: RetrainRequest, workflow_id: str, summary: DataSummary, staged: StagedChallenger, scores: Scores
) -> int:
    registry = _env().registry()
    version = _version_of_run(registry, request.model, workflow_id)
    if version is None:
        trainer = get_trainer(request.model)
        challenger = _challenger(trainer, request, workflow_id, summary, staged)
        tags = {TAG_WORKFLOW: workflow_id, TAG_TRIGGER: request.trigger, TAG_CAUSE: request.cause}
        version = register_version(registry, trainer, summary, challenger, scores.challenger, tags=tags).version
    registry.set_alias(request.model, CHALLENGER, version)
    return version


@DBOS.step(name="marketpilot.retrain.decide")
def _decide_step(request: RetrainRequest, scores: Scores, version: int, margin: float) -> Verdict:
    goal = get_trainer(request.model).goal
    return decide(
        goal,
        margin,
        scores.challenger[goal.name],
        scores.champion.get(goal.name),
        champion_version=scores.champion_version,
        champion_error=scores.champion_error,
    )


@DBOS.step(name="marketpilot.retrain.promote", retries_allowed=True, max_attempts=3, should_retry=_transient)
def _promote_step(
    request: RetrainRequest,
    workflow_id: str,
    summary: DataSummary,
    scores: Scores,
    version: int,
    verdict: Verdict,
    margin: float,
) -> Decision:
    registry = _env().registry()
    outcome: Outcome = "promoted" if verdict.promote else "rejected"
    reason = verdict.reason
    if verdict.promote and not request.policy.promote:
        outcome, reason = "held", f"{reason}; not promoted: promotion is switched off for this run"
    elif verdict.promote:
        current = _champion_number(request.model)
        if current == version:
            pass  # an earlier attempt of this step promoted it and died before it was recorded
        elif current != scores.champion_version:
            outcome = "superseded"
            reason = (
                f"{reason}; not promoted: the champion changed from {_label(scores.champion_version)} to "
                f"{_label(current)} during the run"
            )
        else:
            registry.promote(request.model, version)
    goal = get_trainer(request.model).goal
    decision = Decision(
        model=request.model,
        workflow_id=workflow_id,
        trigger=request.trigger,
        cause=request.cause,
        outcome=outcome,
        reason=reason,
        metric=goal.name,
        direction=goal.direction,
        margin=margin,
        challenger_version=version,
        champion_version=scores.champion_version,
        challenger_value=scores.challenger.get(goal.name),
        champion_value=scores.champion.get(goal.name),
        improvement=verdict.improvement,
        decided_at=datetime.now(UTC),
        data=summary,
        challenger_metrics=scores.challenger,
        champion_metrics=scores.champion,
    )
    registry.set_version_tags(request.model, version, decision.tags())
    _discard(workflow_id)
    return decision


@DBOS.step(name="marketpilot.retrain.skip")
def _skip_step(request: RetrainRequest, workflow_id: str, margin: float, reason: str) -> Decision:
    goal = get_trainer(request.model).goal
    _discard(workflow_id)
    return Decision(
        model=request.model, workflow_id=workflow_id, trigger=request.trigger, cause=request.cause,
        outcome="skipped", reason=f"not enough data: {reason}", metric=goal.name, direction=goal.direction,
        margin=margin, challenger_version=None, champion_version=None, challenger_value=None,
        champion_value=None, improvement=None, decided_at=datetime.now(UTC),
    )


# -- starting runs ---------------------------------------------------------------------------


def start_retraining(request: RetrainRequest) -> WorkflowHandle[Decision]:
    """Enqueue a run on the retraining queue (one run at a time across all workers: training
    is CPU-heavy) and return at once. Enqueueing an id that exists returns that run's
    handle instead of starting another: that is what makes triggers idempotent."""
    queue = DBOS.retrieve_queue(QUEUE)
    if queue is None:
        raise RuntimeError(f"the {QUEUE!r} queue is not registered: start DBOS with retraining_engine.launch()")
    with SetWorkflowID(request.workflow_id):
        return queue.enqueue(retrain_workflow, request)


def run_retraining(
    source: DataSource | Settings,
    model: str,
    *,
    policy: RetrainPolicy | None = None,
    cause: str | None = None,
    as_of: datetime | None = None,
) -> Decision:
    """Run one retraining of `model` in this process and wait for its decision.

    Launches DBOS for the call unless :mod:`.retraining_engine` already did: with this
    host's CLI executor id, so an interrupted run is resumed by the next call here, and
    without dequeuing, so it never picks up the worker's queued runs. Naming the run with
    `cause` makes it idempotent: the same cause returns the recorded decision.
    """
    from marketpilot.platform.models import retraining_engine

    get_trainer(model)  # fail fast on an unknown model, before launching anything
    request = RetrainRequest(
        model=model, trigger="manual", policy=policy or RetrainPolicy(), as_of=as_of,
        **({"cause": cause} if cause else {}),
    )
    with retraining_engine.engine(source, executor_id=retraining_engine.cli_executor_id(), dequeue=False):
        with SetWorkflowID(request.workflow_id):
            return retrain_workflow(request)


def decisions(model: str, *, limit: int = 20) -> list[Decision]:
    """The latest finished runs of `model`, newest first (DBOS must be launched)."""
    statuses = DBOS.list_workflows(
        name=RETRAIN_WORKFLOW, workflow_id_prefix=f"retrain:{model}:", status="SUCCESS",
        sort_desc=True, limit=limit, load_input=False,
    )
    return [s.output for s in statuses if isinstance(s.output, Decision)]


# -- helpers ---------------------------------------------------------------------------------


class _Datasets:
    """Training data loaded by this process, by run: steps of one run in one process share
    it instead of reading the database again. Two entries: runs are serialised per queue."""

    def __init__(self, size: int = 2) -> None:
        self._size = size
        self._items: OrderedDict[str, TrainingData[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> TrainingData[Any] | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, data: TrainingData[Any]) -> None:
        with self._lock:
            self._items[key] = data
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_datasets = _Datasets()


def _data(trainer: Trainer[Any], request: RetrainRequest, workflow_id: str, summary: DataSummary) -> TrainingData[Any]:
    """The run's data: cached, or re-read with the recorded cut-off and checked."""
    cached = _datasets.get(workflow_id)
    if cached is not None:
        return cached
    data = load_training_data(trainer, _env(), summary.as_of, request.policy.holdout_fraction)
    if data.summary.fingerprint != summary.fingerprint:
        raise DataChanged(
            f"retraining {request.model}: the data before {summary.as_of.isoformat()} changed since the run "
            f"started ({summary.train_rows}+{summary.holdout_rows} rows then, "
            f"{data.summary.train_rows}+{data.summary.holdout_rows} now); start a new run"
        )
    _datasets.put(workflow_id, data)
    return data


def _staging_dir(workflow_id: str) -> Path:
    digest = hashlib.sha256(workflow_id.encode()).hexdigest()[:24]
    return _env().settings.home / _STAGING / digest


def _stage(workflow_id: str, trained: TrainedModel) -> StagedChallenger:
    """Write the challenger where later steps (maybe in another process) find it; written
    beside and renamed into place, so a crash never leaves half a model to load."""
    target = _staging_dir(workflow_id)
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    scratch.mkdir(parents=True)
    try:
        artifacts.save_model(trained.model, scratch / "model")
        if trained.reference is not None:
            trained.reference.save(scratch / REFERENCE_FILE)
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return StagedChallenger(directory=str(target), params=dict(trained.params))


def _challenger(
    trainer: Trainer[Any], request: RetrainRequest, workflow_id: str, summary: DataSummary, staged: StagedChallenger
) -> TrainedModel:
    """The staged challenger; trained again if its files are gone (the step that trained it
    ran on another machine, or the home directory was cleaned)."""
    from marketpilot.platform.monitoring.drift_reference import Reference

    directory = Path(staged.directory)
    try:
        model = artifacts.load_model(directory / "model")
    except (FileNotFoundError, ArtifactError):
        log.warning("retraining %s: staged challenger missing at %s; training it again", request.model, directory)
        trained = trainer.train(_data(trainer, request, workflow_id, summary).train)
        _stage(workflow_id, trained)
        return trained
    reference_path = directory / REFERENCE_FILE
    reference = Reference.load(reference_path) if reference_path.is_file() else None
    return TrainedModel(model=model, params=staged.params, reference=reference)


def _discard(workflow_id: str) -> None:
    _datasets.drop(workflow_id)
    shutil.rmtree(_staging_dir(workflow_id), ignore_errors=True)


def _version_of_run(registry: ModelRegistry, model: str, workflow_id: str) -> int | None:
    """The version an earlier attempt of this run registered, if any."""
    try:
        versions = registry.versions(model)
    except ModelNotFound:
        return None
    found = [v.version for v in versions if v.tags.get(TAG_WORKFLOW) == workflow_id]
    return min(found) if found else None


def _champion_number(model: str) -> int | None:
    try:
        return _env().registry().get(model, CHAMPION).version
    except ModelNotFound:
        return None


def _label(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def _brief(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]
