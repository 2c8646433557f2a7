"""Guarded experiments: create, assign units, fold outcomes in, halt, ramp, kill.

Every outcome batch is folded into the arm's sufficient statistics and the guardrails are
re-evaluated in the same transaction, so a breach halts (rolls back) the arm the moment it is
seen; a halt or ramp writes its event to the outbox in that transaction too. The manual kill
switch halts every treatment arm at once. Halting is a rollback: assignment sends a halted
arm's units to control from the next request on.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.measure.experiments.arm_stats import ArmStats
from marketpilot.measure.experiments.assignment import assign
from marketpilot.measure.experiments.events import ArmHalted, ExperimentRamped
from marketpilot.measure.experiments.guardrails import GuardrailConfig, GuardrailResult, evaluate_guardrails
from marketpilot.measure.experiments.ramp import DEFAULT_STAGES, RampSchedule
from marketpilot.measure.experiments.tables import ExperimentArmRow, ExperimentRow
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox

__all__ = ["ArmReport", "Experiment", "ExperimentService", "ExperimentSpec", "Outcomes"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ExperimentSpec:
    id: str
    name: str
    control: str = "control"
    treatments: tuple[str, ...] = ("treatment",)
    stages: tuple[float, ...] = DEFAULT_STAGES
    min_stage_sessions: int = 10_000
    horizon_sessions: int = 1_000_000
    auto_ramp: bool = True
    guardrails: GuardrailConfig = field(default_factory=GuardrailConfig)


@dataclass(frozen=True)
class Outcomes:
    """A batch for one arm: finished sessions and/or served requests."""

    gmv: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clicked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    error: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


@dataclass(frozen=True)
class ArmReport:
    arm: str
    sessions: int
    requests: int
    gmv_per_session: float
    halted: bool
    guardrails: tuple[GuardrailResult, ...]  # empty for control


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    status: str
    control: str
    treatments: tuple[str, ...]
    halted_arms: tuple[str, ...]
    stages: tuple[float, ...]
    stage: int
    share: float  # current traffic share of each live treatment arm
    total_sessions: int
    auto_ramp: bool
    halt_reason: str | None
    created_at: datetime
    updated_at: datetime
    arms: tuple[ArmReport, ...]


def _check_spec(spec: ExperimentSpec) -> RampSchedule:
    if not _ID.fullmatch(spec.id):
        raise InvalidInput("experiment id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    arms = (spec.control, *spec.treatments)
    if not spec.treatments:
        raise InvalidInput("an experiment needs at least one treatment arm")
    if any(not _ID.fullmatch(a) for a in arms):
        raise InvalidInput("arm names must be 1-64 letters, digits, '.', '_' or '-'")
    if len(set(arms)) != len(arms):
        raise InvalidInput("arm names must be unique")
    try:
        schedule = RampSchedule(spec.stages, spec.min_stage_sessions, spec.horizon_sessions)
        schedule.check_arms(len(spec.treatments))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return schedule


class ExperimentService:
    def __init__(self, db: Database, source: str = "marketpilot") -> None:
        self.db = db
        self.source = source

    # ---- reads -------------------------------------------------------------------------
    def get(self, experiment_id: str) -> Experiment:
        with self.db.read() as s:
            return self._experiment(s, self._row(s, experiment_id))

    def list(self, status: str | None = None) -> list[Experiment]:
        with self.db.read() as s:
            q = select(ExperimentRow).order_by(ExperimentRow.created_at.desc(), ExperimentRow.id)
            if status is not None:
                q = q.where(ExperimentRow.status == status)
            return [self._experiment(s, row) for row in s.scalars(q)]

    def assign(self, experiment_id: str, unit_id: str) -> str:
        """The arm serving ``unit_id`` now (control once the experiment is over)."""
        with self.db.read() as s:
            row = self._row(s, experiment_id)
        if row.status != "running":
            return row.control
        return assign(row.id, unit_id, row.control, row.treatments, row.stages[row.stage], frozenset(row.halted_arms))

    # ---- writes ------------------------------------------------------------------------
    def create(self, spec: ExperimentSpec) -> Experiment:
        _check_spec(spec)
        now = utcnow()
        with self.db.session() as s:
            if s.get(ExperimentRow, spec.id) is not None:
                raise Conflict(f"experiment {spec.id!r} already exists")
            s.add(ExperimentRow(
                id=spec.id, name=spec.name, status="running", control=spec.control, treatments=list(spec.treatments),
                halted_arms=[], stages=list(spec.stages), stage=0, stage_start_sessions=0,
                min_stage_sessions=spec.min_stage_sessions, horizon_sessions=spec.horizon_sessions,
                auto_ramp=spec.auto_ramp, guardrails=asdict(spec.guardrails), halt_reason=None,
                created_at=now, updated_at=now))
            s.flush()
            s.add_all([ExperimentArmRow(experiment_id=spec.id, arm=a, stats=ArmStats().to_json(), updated_at=now)
                       for a in (spec.control, *spec.treatments)])
            s.flush()
            return self._experiment(s, self._row(s, spec.id))

    def record(self, experiment_id: str, arm: str, outcomes: Outcomes) -> Experiment:
        """Fold one arm's outcome batch in, then halt breaching arms and ramp if due."""
        with self.db.session() as s:
            return self.record_in(s, experiment_id, arm, outcomes)

    def record_in(self, s: Session, experiment_id: str, arm: str, outcomes: Outcomes) -> Experiment:
        """:meth:`record` inside the caller's transaction (event handlers: exactly-once folding)."""
        row = self._row(s, experiment_id, lock=True)
        arm_rows = self._arm_rows(s, row)
        if arm not in arm_rows:
            raise InvalidInput(f"experiment {experiment_id!r} has no arm {arm!r}")
        stats = ArmStats.from_json(arm_rows[arm].stats)
        try:
            if outcomes.gmv.size:
                clicked = outcomes.clicked if outcomes.clicked.size else None
                if clicked is not None and clicked.shape != outcomes.gmv.shape:
                    raise ValueError("clicked must have one entry per session")
                stats.add_sessions(outcomes.gmv, clicked)
            if outcomes.latency_ms.size:
                stats.add_requests(outcomes.latency_ms, outcomes.error)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        arm_rows[arm].stats = stats.to_json()
        arm_rows[arm].updated_at = utcnow()
        if row.status == "running":
            self._decide(s, row, {a: ArmStats.from_json(r.stats) for a, r in arm_rows.items()})
        s.flush()
        return self._experiment(s, row)

    def ramp(self, experiment_id: str, stage: int | None = None) -> Experiment:
        """Move to ``stage`` (default: the next one). Ramps only go up, and only while running."""
        with self.db.session() as s:
            row = self._row(s, experiment_id, lock=True)
            if row.status != "running":
                raise Conflict(f"experiment {experiment_id!r} is {row.status}; it cannot be ramped")
            target = row.stage + 1 if stage is None else stage
            if not row.stage < target < len(row.stages):
                raise InvalidInput(f"stage must lie in ({row.stage}, {len(row.stages) - 1}], got {target}")
            self._set_stage(s, row, target, self._total(self._arm_rows(s, row)), automatic=False)
            s.flush()
            return self._experiment(s, row)

    def kill(self, experiment_id: str, reason: str) -> Experiment:
        """The manual kill switch: every treatment arm halted, all traffic back to control."""
        if not reason.strip():
            raise InvalidInput("a kill needs a reason")
        with self.db.session() as s:
            row = self._row(s, experiment_id, lock=True)
            if row.status in ("killed", "completed"):
                raise Conflict(f"experiment {experiment_id!r} is already {row.status}")
            total = self._total(self._arm_rows(s, row))
            for arm in row.treatments:
                if arm not in row.halted_arms:
                    outbox.append(s, ArmHalted(experiment_id=row.id, arm=arm, cause="kill", reason=reason,
                                               total_sessions=total), self.source)
            row.halted_arms = list(row.treatments)
            row.status, row.halt_reason, row.updated_at = "killed", f"killed: {reason}", utcnow()
            s.flush()
            return self._experiment(s, row)

    # ---- internals ---------------------------------------------------------------------
    def _decide(self, s: Session, row: ExperimentRow, stats: dict[str, ArmStats]) -> None:
        config = GuardrailConfig(**row.guardrails)
        total = sum(st.sessions for st in stats.values())
        halted = list(row.halted_arms)
        any_breach = False
        for arm in row.treatments:
            if arm in halted:
                continue
            breaches = [r for r in evaluate_guardrails(stats[arm], stats[row.control], config) if r.status == "breach"]
            if breaches:
                any_breach = True
                reason = ", ".join(f"{r.name} breached" for r in breaches)
                halted.append(arm)
                outbox.append(s, ArmHalted(experiment_id=row.id, arm=arm, cause="guardrail", reason=reason,
                                           total_sessions=total), self.source)
                row.halt_reason = f"{arm}: {reason}"
        row.halted_arms = halted
        row.updated_at = utcnow()
        if set(halted) >= set(row.treatments):
            row.status = "halted"
        elif total >= row.horizon_sessions:
            row.status = "completed"
        elif row.auto_ramp and not any_breach and RampSchedule(tuple(row.stages), row.min_stage_sessions,
                                                               row.horizon_sessions).can_advance(
                                                                   row.stage, total - row.stage_start_sessions):
            self._set_stage(s, row, row.stage + 1, total, automatic=True)

    def _set_stage(self, s: Session, row: ExperimentRow, stage: int, total: int, *, automatic: bool) -> None:
        row.stage, row.stage_start_sessions, row.updated_at = stage, total, utcnow()
        outbox.append(s, ExperimentRamped(experiment_id=row.id, stage=stage, share=row.stages[stage],
                                          automatic=automatic), self.source)

    @staticmethod
    def _row(s: Session, experiment_id: str, *, lock: bool = False) -> ExperimentRow:
        q = select(ExperimentRow).where(ExperimentRow.id == experiment_id)
        row = s.scalars(q.with_for_update() if lock else q).one_or_none()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return row

    @staticmethod
    def _arm_rows(s: Session, row: ExperimentRow) -> dict[str, ExperimentArmRow]:
        rows = s.scalars(select(ExperimentArmRow).where(ExperimentArmRow.experiment_id == row.id))
        return {r.arm: r for r in rows}

    @staticmethod
    def _total(arm_rows: dict[str, ExperimentArmRow]) -> int:
        return sum(int(r.stats["sessions"]) for r in arm_rows.values())

    def _experiment(self, s: Session, row: ExperimentRow) -> Experiment:
        arm_rows = self._arm_rows(s, row)
        stats = {a: ArmStats.from_json(r.stats) for a, r in arm_rows.items()}
        config = GuardrailConfig(**row.guardrails)
        control = stats[row.control]
        arms = tuple(
            ArmReport(arm=a, sessions=stats[a].sessions, requests=stats[a].requests,
                      gmv_per_session=stats[a].gmv()[0], halted=a in row.halted_arms,
                      guardrails=() if a == row.control else tuple(evaluate_guardrails(stats[a], control, config)))
            for a in (row.control, *row.treatments))
        live = row.status == "running"
        return Experiment(
            id=row.id, name=row.name, status=row.status, control=row.control, treatments=tuple(row.treatments),
            halted_arms=tuple(row.halted_arms), stages=tuple(row.stages), stage=row.stage,
            share=row.stages[row.stage] if live else 0.0, total_sessions=sum(st.sessions for st in stats.values()),
            auto_ramp=row.auto_ramp, halt_reason=row.halt_reason, created_at=row.created_at,
            updated_at=row.updated_at, arms=arms)
