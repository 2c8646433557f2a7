"""Recording what runs do: run state, step attempts with timings, and their events.

Every write goes through one transaction with the outbox events it announces. A step
attempt is recorded at most once (unique run/step/attempt): a replay after a crash between
"recorded" and "DBOS checkpointed the step" finds the row and neither records nor emits
again, which is what makes database-side steps exactly once.

Listeners (:func:`add_listener`) hear every step boundary in this process: metrics use it,
and the crash tests use it to kill the worker at a chosen boundary.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from marketpilot.domain.events import EventData
from marketpilot.platform.db.engine import Executor
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox
from marketpilot.workflows.events import WorkflowStateChanged, WorkflowStepRecorded
from marketpilot.workflows.tables import WorkflowRun, WorkflowStep

Listener = Callable[[str, str, str], None]
"""Called with (workflow id, step, phase); phase is ``start`` or ``done`` (after the step's
effect and its record, before DBOS checkpoints the step)."""

_listeners: list[Listener] = []

STEPS_TABLE: Table = WorkflowStep.__table__  # type: ignore[assignment]
RUNS_TABLE: Table = WorkflowRun.__table__  # type: ignore[assignment]

FINAL_STATES = frozenset({"completed", "failed", "rejected", "cancelled", "resolved"})


def add_listener(listener: Listener) -> None:
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def boundary(workflow_id: str, step: str, phase: str) -> None:
    for listener in tuple(_listeners):
        listener(workflow_id, step, phase)


class StepClock:
    """When a step attempt started, for its record."""

    def __init__(self) -> None:
        self.started_at = utcnow()
        self._t0 = time.perf_counter()

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._t0) * 1000.0


def recorded(session: Session, workflow_id: str, step: str, attempt: int = 0) -> WorkflowStep | None:
    return session.scalars(
        select(WorkflowStep).where(
            WorkflowStep.workflow_id == workflow_id, WorkflowStep.step == step, WorkflowStep.attempt == attempt
        )
    ).one_or_none()


_STEP_KEY = ("workflow_id", "step", "attempt")


def _dialect_of(session: Executor) -> str:
    bind = session if isinstance(session, Connection) else session.get_bind()
    return "postgresql" if bind.dialect.name == "postgresql" else "sqlite"


# Inserts per dialect, built once (they run several times per order; a statement object
# reused keeps its cache key). RETURNING says whether a row went in (rowcount is -1 here on
# PostgreSQL's driver). A step's insert does nothing on a taken run/step/attempt key, except
# that an outcome replaces a ``retry`` row of the same attempt: the attempt was recorded as
# failing transiently, then the worker died before DBOS checkpointed that failure, and the
# replay of the same attempt got an answer.
_SUPERSEDED = "retry"


def _insert_step(dialect: Any) -> Any:
    insert = dialect.insert(STEPS_TABLE)
    return insert.on_conflict_do_update(
        index_elements=list(_STEP_KEY),
        set_={column: insert.excluded[column] for column in ("status", "detail", "started_at", "finished_at",
                                                            "duration_ms")},
        where=(STEPS_TABLE.c.status == _SUPERSEDED) & (insert.excluded.status != _SUPERSEDED),
    ).returning(STEPS_TABLE.c.step, STEPS_TABLE.c.attempt)


_INSERT_STEP = {name: _insert_step(dialect) for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_INSERT_RUN = {
    name: dialect.insert(RUNS_TABLE).on_conflict_do_nothing(index_elements=["id"]).returning(RUNS_TABLE.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step attempt to record (see :func:`record_steps`)."""

    step: str
    status: str
    clock: StepClock
    attempt: int = 0
    detail: dict[str, Any] | None = None
    events: tuple[EventData, ...] = ()
    retries: int = 0
    compensations: int = 0
    elapsed_ms: float | None = None


def record_step(session: Executor, source: str, *, workflow_id: str, kind: str, step: str, status: str,
                clock: StepClock, attempt: int = 0, detail: dict[str, Any] | None = None,
                events: Iterable[EventData] = (), retries: int = 0, compensations: int = 0,
                elapsed_ms: float | None = None) -> bool:
    """Record one step attempt and emit its events: :func:`record_steps` of one."""
    record = StepRecord(step, status, clock, attempt, detail, tuple(events), retries, compensations, elapsed_ms)
    return record_steps(session, source, workflow_id=workflow_id, kind=kind, records=(record,))[0]


def record_steps(session: Executor, source: str, *, workflow_id: str, kind: str,
                 records: Sequence[StepRecord]) -> list[bool]:
    """Record step attempts of one run and emit their events; for each, False (and nothing
    written) if that attempt was recorded before (with an outcome: see ``_INSERT_STEP`` for a
    ``retry``).

    One insert decides for all of them (it does nothing on a run/step/attempt key it finds
    taken: no read first, no ORM unit of work), one more writes the events of those written,
    and the run's counters change only with retries or compensations: a transaction that
    records a whole step's work holds the embedded database's single writer for three
    statements, not two per record."""
    now = utcnow()
    durations = [r.clock.elapsed_ms if r.elapsed_ms is None else r.elapsed_ms for r in records]
    written = {
        (row.step, row.attempt)
        for row in session.execute(
            _INSERT_STEP[_dialect_of(session)],
            [{"workflow_id": workflow_id, "step": r.step, "attempt": r.attempt, "status": r.status,
              "detail": r.detail or {}, "started_at": r.clock.started_at, "finished_at": now, "duration_ms": ms}
             for r, ms in zip(records, durations, strict=True)],
        )
    }
    fresh = [(r.step, r.attempt) in written for r in records]
    retries = sum(r.retries for r, new in zip(records, fresh, strict=True) if new)
    compensations = sum(r.compensations for r, new in zip(records, fresh, strict=True) if new)
    if retries or compensations:  # the run row changes only with its counters (hot path: one write less)
        values: dict[str, Any] = {"updated_at": now}
        if retries:
            values["retries"] = RUNS_TABLE.c.retries + retries
        if compensations:
            values["compensations"] = RUNS_TABLE.c.compensations + compensations
        session.execute(update(RUNS_TABLE).where(RUNS_TABLE.c.id == workflow_id).values(**values))
    events: list[EventData] = []
    for r, ms, new in zip(records, durations, fresh, strict=True):
        if new:
            events.append(WorkflowStepRecorded(workflow_id=workflow_id, kind=kind, step=r.step, attempt=r.attempt,
                                               status=r.status, duration_ms=round(ms, 3), detail=r.detail or {}))
            events.extend(r.events)
    outbox.append_many(session, events, source)
    return fresh


def open_run(
    session: Executor, source: str, *, workflow_id: str, kind: str, subject_id: str, seller_id: str | None
) -> bool:
    """The run's row in state ``running`` (False: it existed, e.g. a replay). One insert
    that does nothing on a taken id, as for step records."""
    now = utcnow()
    inserted = session.execute(
        _INSERT_RUN[_dialect_of(session)],
        {"id": workflow_id, "kind": kind, "subject_id": subject_id, "seller_id": seller_id, "state": "running",
         "outcome": None, "reason": None, "retries": 0, "compensations": 0, "human_steps": 0, "result": {},
         "created_at": now, "updated_at": now},
    )
    if inserted.first() is None:
        return False
    outbox.append(
        session, WorkflowStateChanged(workflow_id=workflow_id, kind=kind, subject_id=subject_id, state="running"), source
    )
    return True


@functools.cache
def _move_run(with_result: bool, add_human_steps: bool, final: bool) -> Any:
    """set_state's UPDATE for one shape of change, built once: it runs at least twice per
    order, and building it per call (with its cache key) was a fifth of the CPU the order's
    last transaction spends holding the embedded database's writer."""
    runs = RUNS_TABLE
    now = bindparam("b_now", type_=runs.c.updated_at.type)
    state = bindparam("b_state", type_=runs.c.state.type)
    outcome = bindparam("b_outcome", type_=runs.c.outcome.type)
    values: dict[str, Any] = {"state": state, "outcome": outcome,
                              "reason": bindparam("b_reason", type_=runs.c.reason.type), "updated_at": now}
    if with_result:
        values["result"] = bindparam("b_result", type_=runs.c.result.type)
    if add_human_steps:
        values["human_steps"] = runs.c.human_steps + bindparam("b_human", type_=runs.c.human_steps.type)
    if final:
        values["finished_at"] = now
    return (
        update(runs)
        .where(runs.c.id == bindparam("b_id", type_=runs.c.id.type),
               or_(runs.c.state != state, runs.c.outcome.is_distinct_from(outcome)))
        .values(**values)
        .returning(runs.c.kind, runs.c.subject_id)
    )


def set_state(
    session: Executor,
    source: str,
    workflow_id: str,
    state: str,
    *,
    outcome: str | None = None,
    reason: str | None = None,
    result: dict[str, Any] | None = None,
    human_steps: int = 0,
    at: datetime | None = None,
) -> None:
    """Move the run to `state` (a no-op if it is there already with the same outcome): one
    conditional UPDATE that returns what the event needs, no read first."""
    runs = RUNS_TABLE
    moved = session.execute(
        _move_run(result is not None, human_steps != 0, state in FINAL_STATES),
        {"b_id": workflow_id, "b_state": state, "b_outcome": outcome, "b_reason": reason, "b_now": at or utcnow(),
         "b_result": result, "b_human": human_steps},
    ).first()
    if moved is None:
        if session.execute(select(runs.c.id).where(runs.c.id == workflow_id)).first() is None:
            raise LookupError(f"workflow run {workflow_id!r} has no row; open_run first")
        return
    outbox.append(
        session,
        WorkflowStateChanged(
            workflow_id=workflow_id, kind=moved.kind, subject_id=moved.subject_id, state=state, outcome=outcome,
            reason=reason,
        ),
        source,
    )
