"""The retraining workflow in process (DBOS launched per test), on SQLite and PostgreSQL:
promotion only past the margin, the recorded reasons, idempotent run ids, and both
triggers (drift events and the schedule)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert

sys.path.insert(0, str(Path(__file__).parent))

from retrain_support import BACKENDS, ShuffledClickTrainer, marketplace, unique_model  # noqa: E402

from marketpilot.domain.events import DriftDetected  # noqa: E402
from marketpilot.platform.config import Settings  # noqa: E402
from marketpilot.platform.db import Database  # noqa: E402
from marketpilot.platform.db import schema as t  # noqa: E402
from marketpilot.platform.events import Dispatcher, EventBus, outbox  # noqa: E402
from marketpilot.platform.models import retraining, retraining_engine  # noqa: E402
from marketpilot.platform.models.registry import ModelRegistry  # noqa: E402
from marketpilot.platform.models.retraining import (  # noqa: E402
    DataChanged,
    Decision,
    RetrainPolicy,
    RetrainRequest,
    decisions,
    run_retraining,
)
from marketpilot.platform.models.retraining_click import ClickTrainer  # noqa: E402
from marketpilot.platform.models.retraining_decision import TAG_WORKFLOW  # noqa: E402
from marketpilot.platform.models.retraining_triggers import (  # noqa: E402
    DRIFT_CONSUMER,
    SCHEDULE_PREFIX,
    apply_schedules,
    subscribe_drift_retraining,
)
from marketpilot.platform.models.training import Examples, register_trainer  # noqa: E402

MARGIN = RetrainPolicy(margin=0.01)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest) -> Settings:
    return marketplace(str(request.param))


@pytest.fixture
def engine(settings: Settings) -> Iterator[None]:
    """DBOS launched for one test, with an executor id of its own: runs another test left
    pending in the shared system database are not this test's to resume."""
    retraining_engine.launch(
        settings, executor_id=f"test-{uuid.uuid4().hex[:8]}", queue_polling_interval=0.1, polling_interval=0.1
    )
    yield
    retraining_engine.shutdown()


@pytest.fixture
def registry(settings: Settings) -> Iterator[ModelRegistry]:
    with ModelRegistry.from_settings(settings) as opened:
        yield opened


def test_promotes_only_a_challenger_that_beats_the_champion_by_the_margin(
    settings: Settings, engine: None, registry: ModelRegistry
) -> None:
    model = unique_model("promote")

    register_trainer(ShuffledClickTrainer(name=model), replace=True)
    first = run_retraining(settings, model, policy=MARGIN)
    assert (first.outcome, first.challenger_version, first.champion_version) == ("promoted", 1, None)
    assert first.reason.startswith("no champion yet; challenger auc ")

    register_trainer(ClickTrainer(name=model), replace=True)
    dry = run_retraining(settings, model, policy=RetrainPolicy(margin=0.01, promote=False))
    assert dry.outcome == "held"
    assert dry.reason.endswith("not promoted: promotion is switched off for this run")
    assert registry.get(model, "champion").version == 1

    better = run_retraining(settings, model, policy=MARGIN)
    assert (better.outcome, better.challenger_version, better.champion_version) == ("promoted", 3, 1)
    assert better.improvement is not None and better.improvement > 0.05
    assert f"beats champion v1 {better.champion_value:.4f} by {better.improvement:.4f} >= margin 0.0100" in (
        better.reason
    )
    assert better.champion_metrics["auc"] == pytest.approx(first.challenger_metrics["auc"])  # same holdout

    register_trainer(ShuffledClickTrainer(name=model), replace=True)
    worse = run_retraining(settings, model, policy=MARGIN, cause="nightly")
    assert (worse.outcome, worse.challenger_version, worse.champion_version) == ("rejected", 4, 3)
    assert worse.improvement is not None and worse.improvement < -0.05
    assert "(higher is better): not better" in worse.reason

    details = registry.show(model)
    assert details.aliases == {"champion": 3, "challenger": 4}
    assert [e.version for e in details.promotions] == [1, 3]
    by_version = {v.version: v for v in details.versions}
    for decision in (first, dry, better, worse):
        tags = by_version[decision.challenger_version or 0].tags
        assert tags[TAG_WORKFLOW] == decision.workflow_id
        assert tags["retrain.outcome"] == decision.outcome
        assert tags["retrain.reason"] == decision.reason
    assert by_version[4].metrics["auc"] == pytest.approx(worse.challenger_value)
    assert worse.data is not None and by_version[4].data_fingerprint == worse.data.fingerprint

    # A named run is run once: asking again returns its decision and registers nothing.
    again = run_retraining(settings, model, policy=MARGIN, cause="nightly")
    assert again == worse
    assert len(registry.versions(model)) == 4
    assert [d.workflow_id for d in decisions(model)] == [
        worse.workflow_id, better.workflow_id, dry.workflow_id, first.workflow_id,
    ]


class _PromotesDuringEvaluation(ClickTrainer):
    """Scoring the champion is the moment an operator promotes another version by hand."""

    def __init__(self, name: str, registry: ModelRegistry, version: int) -> None:
        super().__init__(name=name)
        self.registry, self.version, self.calls = registry, version, 0

    def evaluate(self, model: object, holdout: Examples) -> Mapping[str, float]:
        self.calls += 1
        if self.calls == 2:  # 1: the challenger, 2: the champion
            self.registry.promote(self.name, self.version)
        return super().evaluate(model, holdout)


def test_a_champion_chosen_during_the_run_is_not_overridden(
    settings: Settings, engine: None, registry: ModelRegistry
) -> None:
    model = unique_model("superseded")
    register_trainer(ShuffledClickTrainer(name=model), replace=True)
    assert run_retraining(settings, model, policy=MARGIN).outcome == "promoted"  # v1
    assert run_retraining(settings, model, policy=MARGIN).outcome == "rejected"  # v2, same model again

    register_trainer(_PromotesDuringEvaluation(model, registry, version=2), replace=True)
    decision = run_retraining(settings, model, policy=MARGIN)
    assert decision.outcome == "superseded"
    assert decision.reason.endswith("not promoted: the champion changed from v1 to v2 during the run")
    assert registry.get(model, "champion").version == 2


def test_too_little_data_skips_the_run_and_registers_nothing(
    settings: Settings, engine: None, registry: ModelRegistry
) -> None:
    model = unique_model("skipped")
    register_trainer(ClickTrainer(name=model), replace=True)
    decision = run_retraining(settings, model, as_of=datetime(2025, 1, 1, tzinfo=UTC))
    assert decision.outcome == "skipped"
    assert decision.reason == "not enough data: click: no views with a request or session id before as_of"
    assert decision.challenger_version is None
    assert [m.name for m in registry.list_models()].count(model) == 0


def test_a_resumed_step_refuses_data_that_changed_under_the_run(settings: Settings, engine: None) -> None:
    model = unique_model("late-rows")
    register_trainer(ClickTrainer(name=model), replace=True)
    request = RetrainRequest(model=model, cause="late")
    summary = retraining._load_step(request, request.workflow_id)  # a step, run outside its workflow
    retraining._datasets.clear()  # as in the process that resumes the run: nothing cached
    late = {
        "id": f"late-{uuid.uuid4().hex}", "user_id": "usr_00000001", "listing_id": "lst_00000001", "event": "view",
        "request_id": "late-request", "position": 0, "timestamp": datetime(2026, 1, 10, tzinfo=UTC),
    }
    db = Database(settings.db_url)
    try:
        with db.session() as session:
            session.execute(insert(t.Interaction).values(**late))
        with pytest.raises(DataChanged, match=rf"^retraining {model}: the data before .* changed since the run started "
                           rf"\({summary.train_rows}\+{summary.holdout_rows} rows then, "):
            retraining._train_step(request, request.workflow_id, summary)
    finally:
        with db.session() as session:
            session.execute(delete(t.Interaction).where(t.Interaction.id == late["id"]))
        db.dispose()


def _drift(model: str) -> DriftDetected:
    return DriftDetected(
        report_id=1, model=model, window_start="2026-01-14T00:00:00+00:00", window_end="2026-01-14T01:00:00+00:00",
        observations=500, features=["position"], psi={"position": 0.4}, p_adjusted={"position": 0.001},
    )


def test_a_drift_event_starts_exactly_one_run_per_event_id(
    settings: Settings, engine: None, registry: ModelRegistry
) -> None:
    from dbos import DBOS

    model = unique_model("drift")
    register_trainer(ClickTrainer(name=model), replace=True)
    bus = EventBus()
    subscription = subscribe_drift_retraining(bus, [model], MARGIN)
    db = Database(settings.db_url)
    try:
        with db.session() as session:
            first = outbox.append(session, _drift(model), "/tests")
            outbox.append(session, _drift("not-retrained-here"), "/tests")
        dispatcher = Dispatcher(db, bus, batch_size=10_000)  # past the import's events in one pass
        dispatcher.run_once()
        # Delivered again, as after a crash before the delivery committed: no second run.
        with db.session() as session:
            subscription.handler(first, session)
        with db.session() as session:
            second = outbox.append(session, _drift(model), "/tests")
        dispatcher.run_once()
        assert dispatcher.stats[DRIFT_CONSUMER].handled == 3  # both events for us, one for another model
    finally:
        db.dispose()

    ids = [f"retrain:{model}:drift:{event.id}" for event in (first, second)]
    results: list[Any] = [DBOS.retrieve_workflow(wid).get_result() for wid in ids]
    assert [r.outcome for r in results] == ["promoted", "rejected"]
    assert all(isinstance(r, Decision) and r.trigger == "drift" for r in results)
    runs = DBOS.list_workflows(workflow_id_prefix=f"retrain:{model}:", load_input=False, load_output=False)
    assert sorted(r.workflow_id for r in runs) == sorted(ids)
    assert DBOS.list_workflows(workflow_id_prefix="retrain:not-retrained-here:", load_output=False) == []
    assert sorted(v.tags[TAG_WORKFLOW] for v in registry.versions(model)) == sorted(ids)


def test_the_schedule_runs_one_named_run_per_tick(settings: Settings, engine: None, registry: ModelRegistry) -> None:
    from dbos import DBOS

    model = unique_model("scheduled")
    register_trainer(ClickTrainer(name=model), replace=True)
    apply_schedules([model], "0 30 2 * * *", MARGIN)
    apply_schedules([model], "0 0 3 * * *", MARGIN)  # applying again replaces, never duplicates
    try:
        [schedule] = DBOS.list_schedules(schedule_name_prefix=f"{SCHEDULE_PREFIX}{model}")
        assert (schedule["schedule"], schedule["queue_name"]) == ("0 0 3 * * *", "marketpilot-retraining")

        tick = DBOS.trigger_schedule(f"{SCHEDULE_PREFIX}{model}")  # what the cron thread does at 03:00
        tick.get_result()
        [run] = DBOS.list_workflows(workflow_id_prefix=f"retrain:{model}:schedule:", load_input=False)
        assert run.status == "SUCCESS"
        assert run.parent_workflow_id == tick.get_workflow_id()
        decision = run.output
        assert isinstance(decision, Decision)
        assert (decision.trigger, decision.outcome) == ("schedule", "promoted")
        assert run.workflow_id == f"retrain:{model}:schedule:{decision.cause}"
        assert registry.get(model, "champion").tags[TAG_WORKFLOW] == run.workflow_id
    finally:
        apply_schedules([], "0 0 3 * * *", MARGIN)
    assert DBOS.list_schedules(schedule_name_prefix=f"{SCHEDULE_PREFIX}{model}") == []
