"""ExperimentService on SQLite and PostgreSQL: guardrail halts, ramps, the kill switch, events."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.measure.experiments import ExperimentService, ExperimentSpec, GuardrailConfig, Outcomes
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import OutboxEvent

GUARDS = GuardrailConfig(min_sessions=200, min_requests=200)


def spec(**kw: object) -> ExperimentSpec:
    base: dict[str, object] = dict(id="exp-1", name="new ranker", stages=(0.01, 0.05, 0.25, 0.5),
                                   min_stage_sessions=1_000, horizon_sessions=1_000_000, guardrails=GUARDS)
    base.update(kw)
    return ExperimentSpec(**base)  # type: ignore[arg-type]


def sessions(rng: np.random.Generator, n: int, conversion: float) -> Outcomes:
    gmv = np.where(rng.random(n) < conversion, rng.lognormal(3.5, 0.8, n), 0.0)
    return Outcomes(gmv=gmv, clicked=rng.random(n) < 0.3)


def event_types(db: Database) -> list[str]:
    with db.read() as s:
        return [e.type for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.position))]


def test_an_arm_that_loses_half_its_gmv_is_halted_and_rolled_back(db: Database) -> None:
    service = ExperimentService(db)
    service.create(spec())
    rng = np.random.default_rng(1)
    service.record("exp-1", "control", sessions(rng, 3_000, 0.3))
    exp = service.record("exp-1", "treatment", sessions(rng, 3_000, 0.15))
    assert exp.status == "halted"
    assert exp.halted_arms == ("treatment",)
    assert "gmv_per_session breached" in (exp.halt_reason or "")
    assert all(service.assign("exp-1", f"user-{i}") == "control" for i in range(200))
    assert "marketpilot.experiment.arm_halted" in event_types(db)


def test_a_harmless_arm_ramps_through_its_stages(db: Database) -> None:
    service = ExperimentService(db)
    service.create(spec())
    rng = np.random.default_rng(2)
    stages = []
    for _ in range(3):
        service.record("exp-1", "control", sessions(rng, 600, 0.2))
        exp = service.record("exp-1", "treatment", sessions(rng, 600, 0.2))
        stages.append(exp.stage)
    assert exp.status == "running"
    assert stages == [1, 2, 3]
    assert exp.share == 0.5
    assert event_types(db).count("marketpilot.experiment.ramped") == 3


def test_kill_switch_halts_every_treatment_arm(db: Database) -> None:
    service = ExperimentService(db)
    service.create(spec(treatments=("a", "b"), stages=(0.1, 0.5)))
    exp = service.kill("exp-1", "bad prices shown")
    assert exp.status == "killed"
    assert set(exp.halted_arms) == {"a", "b"}
    assert exp.share == 0.0
    assert event_types(db).count("marketpilot.experiment.arm_halted") == 2
    with pytest.raises(Conflict, match="already killed"):
        service.kill("exp-1", "again")
    with pytest.raises(Conflict, match="cannot be ramped"):
        service.ramp("exp-1")


def test_manual_ramp_moves_up_only(db: Database) -> None:
    service = ExperimentService(db)
    service.create(spec(auto_ramp=False))
    assert service.ramp("exp-1").stage == 1
    assert service.ramp("exp-1", 3).share == 0.5
    with pytest.raises(InvalidInput, match=r"stage must lie in \(3, 3\]"):
        service.ramp("exp-1", 2)


def test_assignment_is_sticky_and_follows_the_share(sqlite_db: Database) -> None:
    service = ExperimentService(sqlite_db)
    service.create(spec(auto_ramp=False))
    units = [f"u{i}" for i in range(20_000)]
    before = {u for u in units if service.assign("exp-1", u) == "treatment"}
    service.ramp("exp-1", 2)
    after = {u for u in units if service.assign("exp-1", u) == "treatment"}
    assert before <= after
    assert 0.005 < len(before) / len(units) < 0.015
    assert 0.23 < len(after) / len(units) < 0.27


@pytest.mark.parametrize(("kw", "message"), [
    ({"id": "bad id"}, "experiment id must be"),
    ({"treatments": ()}, "at least one treatment arm"),
    ({"treatments": ("control",)}, "arm names must be unique"),
    ({"stages": (0.5, 0.25)}, "stage shares must increase strictly"),
    ({"treatments": ("a", "b", "c"), "stages": (0.1, 0.4)}, "exceed all traffic"),
])
def test_bad_specs_are_refused_with_a_clear_message(sqlite_db: Database, kw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ExperimentService(sqlite_db).create(spec(**kw))


def test_duplicates_unknown_experiments_and_arms(sqlite_db: Database) -> None:
    service = ExperimentService(sqlite_db)
    service.create(spec())
    with pytest.raises(Conflict, match="already exists"):
        service.create(spec())
    with pytest.raises(NotFound, match="'nope' not found"):
        service.get("nope")
    with pytest.raises(InvalidInput, match="has no arm 'x'"):
        service.record("exp-1", "x", Outcomes(gmv=np.ones(3)))
    with pytest.raises(InvalidInput, match="non-negative"):
        service.record("exp-1", "control", Outcomes(gmv=np.array([-1.0])))


def test_a_slow_arm_is_halted_on_latency(sqlite_db: Database) -> None:
    service = ExperimentService(sqlite_db)
    service.create(spec())
    rng = np.random.default_rng(3)
    service.record("exp-1", "control", Outcomes(latency_ms=rng.gamma(4, 2, 500), error=np.zeros(500, bool)))
    exp = service.record("exp-1", "treatment", Outcomes(latency_ms=rng.gamma(4, 4, 500), error=np.zeros(500, bool)))
    assert exp.status == "halted"
    assert "latency_p95 breached" in (exp.halt_reason or "")
