"""What starts a retraining run: a schedule, and drift.

- **Schedule**: a DBOS cron schedule per model (stored in DBOS's system database, so every
  worker sees the same schedules and DBOS fires each tick once). Each tick runs
  :func:`~.retraining.scheduled_retrain`, i.e. one run with workflow id
  ``retrain:<model>:schedule:<tick time>``.
- **Drift**: an event-bus subscriber of ``marketpilot.drift.detected``. For a model it
  retrains, it enqueues a run with workflow id ``retrain:<model>:drift:<event id>``. The bus
  already skips events its ledger has seen; the workflow id covers the gap the ledger
  cannot (the run was enqueued, then the handler's transaction failed and the event comes
  back): enqueueing an id that exists returns the existing run. One run per event id.

The worker wires both with :func:`install_retraining`; settings come from
``MARKETPILOT_RETRAIN_*`` environment variables (:class:`RetrainSettings`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

from marketpilot.domain.events import DriftDetected
from marketpilot.platform.config import ConfigError
from marketpilot.platform.events import CloudEvent, EventBus, Subscription
from marketpilot.platform.events.base import Handler
from marketpilot.platform.models.retraining_decision import RetrainPolicy
from marketpilot.platform.models.training import DataSource, get_trainer

__all__ = [
    "DRIFT_CONSUMER",
    "RetrainSettings",
    "RetrainingService",
    "apply_schedules",
    "drift_handler",
    "install_retraining",
    "subscribe_drift_retraining",
]

log = logging.getLogger(__name__)

DRIFT_CONSUMER = "models.retrain-on-drift"
SCHEDULE_PREFIX = "retrain-"
ENV_PREFIX = "MARKETPILOT_RETRAIN_"


class RetrainSettings(BaseSettings):
    """Retraining settings, from ``MARKETPILOT_RETRAIN_*`` environment variables.

    `models` is a comma-separated list of model names (each needs a registered trainer);
    nothing is retrained automatically unless it is set. `schedule` is a cron expression
    with an optional leading seconds field, in UTC (default: daily at 03:00).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    models: str = ""
    schedule: str = "0 0 3 * * *"
    on_schedule: bool = True
    on_drift: bool = True
    margin: float | None = Field(default=None, ge=0)
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    promote: bool = True

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.strip() for m in self.models.split(",") if m.strip()))

    @property
    def policy(self) -> RetrainPolicy:
        return RetrainPolicy(margin=self.margin, holdout_fraction=self.holdout_fraction, promote=self.promote)

    @classmethod
    def load(cls, **overrides: object) -> RetrainSettings:
        """Read the environment; a bad value raises :class:`ConfigError` naming the variable."""
        try:
            settings = cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = [f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("invalid retraining configuration: " + "; ".join(problems)) from None
        for name in settings.model_names:
            try:
                get_trainer(name)
            except LookupError as exc:
                raise ConfigError(f"{ENV_PREFIX}MODELS: {exc}") from None
        return settings


# -- schedule --------------------------------------------------------------------------------


def apply_schedules(models: Iterable[str], cron: str, policy: RetrainPolicy) -> None:
    """Make the retraining schedules exactly one per model in `models` (DBOS launched):
    schedules of models no longer listed are deleted, changed ones replaced."""
    from dbos import DBOS

    from marketpilot.platform.models.retraining import QUEUE, ScheduledRetrain, scheduled_retrain

    wanted = {f"{SCHEDULE_PREFIX}{model}": model for model in models}
    for existing in DBOS.list_schedules(schedule_name_prefix=SCHEDULE_PREFIX):
        if existing["schedule_name"] not in wanted:
            DBOS.delete_schedule(existing["schedule_name"])
    if wanted:
        DBOS.apply_schedules([
            {
                "schedule_name": name,
                "workflow_fn": scheduled_retrain,
                "schedule": cron,
                "context": ScheduledRetrain(model=model, policy=policy),
                "queue_name": QUEUE,
            }
            for name, model in wanted.items()
        ])


# -- drift -----------------------------------------------------------------------------------


def drift_handler(models: Collection[str], policy: RetrainPolicy) -> Handler:
    """An event handler that starts one retraining run per ``DriftDetected`` event id for
    the models in `models` (other models' drift is ignored)."""
    wanted = frozenset(models)

    def on_drift(event: CloudEvent, session: Session) -> None:
        from marketpilot.platform.models.retraining import RetrainRequest, start_retraining

        payload = event.payload()
        if not isinstance(payload, DriftDetected) or payload.model not in wanted:
            return
        request = RetrainRequest(model=payload.model, trigger="drift", cause=event.id, policy=policy)
        handle = start_retraining(request)
        log.info(
            "drift on %s (report %d, features %s): retraining run %s",
            payload.model, payload.report_id, ", ".join(payload.features), handle.get_workflow_id(),
        )

    return on_drift


def subscribe_drift_retraining(bus: EventBus, models: Collection[str], policy: RetrainPolicy) -> Subscription:
    return bus.subscribe(DRIFT_CONSUMER, [DriftDetected.TYPE], drift_handler(models, policy))


# -- the worker's wiring ---------------------------------------------------------------------


@dataclass
class RetrainingService:
    """Retraining as installed in a worker; :meth:`close` stops DBOS (runs in flight stay
    pending and are resumed by the next worker start)."""

    settings: RetrainSettings
    subscription: Subscription | None

    def close(self, *, grace_seconds: int = 0) -> None:
        from marketpilot.platform.models import retraining_engine

        retraining_engine.shutdown(grace_seconds=grace_seconds)


def install_retraining(runtime: DataSource, settings: RetrainSettings | None = None) -> RetrainingService:
    """Launch DBOS for `runtime` (resuming interrupted runs), apply the schedules and
    subscribe the drift trigger on ``runtime.event_bus`` when the runtime has one. Call
    it before the worker starts delivering events."""
    from marketpilot.platform.models import retraining_engine

    config = settings or RetrainSettings.load()
    models = config.model_names
    bus = getattr(runtime, "event_bus", None)
    subscription = None
    if config.on_drift and models and isinstance(bus, EventBus):
        subscription = subscribe_drift_retraining(bus, models, config.policy)
    retraining_engine.launch(runtime, executor_id=None)
    try:
        apply_schedules(models if config.on_schedule else (), config.schedule, config.policy)
    except BaseException:
        retraining_engine.shutdown()
        raise
    log.info("retraining: models %s, schedule %r, on drift %s", ", ".join(models) or "none", config.schedule,
             config.on_drift)
    return RetrainingService(settings=config, subscription=subscription)
