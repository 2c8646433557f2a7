"""Guardrails from events: session-finished events delivered by the outbox dispatcher."""

from __future__ import annotations

import numpy as np

from marketpilot.measure.experiments import ExperimentService, ExperimentSpec, GuardrailConfig
from marketpilot.measure.experiments.events import ExperimentSessionFinished
from marketpilot.measure.experiments.outcome_folder import OutcomeFolder
from marketpilot.platform.db import Database
from marketpilot.platform.events import Dispatcher, EventBus, outbox


def emit(db: Database, events: list[ExperimentSessionFinished]) -> None:
    with db.session() as s:
        outbox.append_many(s, events, "test")


def test_events_are_folded_once_and_a_harmful_arm_is_halted(sqlite_db: Database) -> None:
    service = ExperimentService(sqlite_db)
    service.create(ExperimentSpec(id="e1", name="e", stages=(0.5,), guardrails=GuardrailConfig(min_sessions=100)))
    bus = EventBus()
    OutcomeFolder(service).subscribe(bus)
    dispatcher = Dispatcher(sqlite_db, bus)
    rng = np.random.default_rng(0)
    events = [ExperimentSessionFinished(experiment_id="e1", arm=arm, session_id=f"{arm}-{i}",
                                        gmv=float(40.0 * (rng.random() < p)), clicked=bool(rng.random() < 0.3),
                                        request_latency_ms=[5.0], request_error=[False])
              for arm, p in (("control", 0.4), ("treatment", 0.1)) for i in range(400)]
    events.append(ExperimentSessionFinished(experiment_id="nope", arm="control", session_id="x", gmv=1.0))
    emit(sqlite_db, events)
    while dispatcher.run_once():
        pass
    exp = service.get("e1")
    assert [a.sessions for a in exp.arms] == [400, 400]
    assert [a.requests for a in exp.arms] == [400, 400]
    assert exp.status == "halted"
    assert dispatcher.run_once() == 0
    assert [a.sessions for a in service.get("e1").arms] == [400, 400]
