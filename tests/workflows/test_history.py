"""Step records: one per run/step/attempt, except that an outcome replaces a ``retry`` of the
same attempt (the worker died after recording the transient failure and before DBOS
checkpointed it, and the replay of that attempt got an answer)."""

from __future__ import annotations

from sqlalchemy import select
from wf_support import Runtime, steps

from marketpilot.platform.db import schema as t
from marketpilot.workflows import history
from marketpilot.workflows.events import WorkflowStateChanged, WorkflowStepRecorded
from marketpilot.workflows.history import StepClock
from marketpilot.workflows.tables import WorkflowRun

RUN = "order:history-test"


def _record(runtime: Runtime, status: str, *, attempt: int = 0, detail: dict[str, object] | None = None) -> bool:
    with runtime.db.session() as s:
        return history.record_step(s, runtime.source, workflow_id=RUN, kind="order", step="capture", status=status,
                                   clock=StepClock(), attempt=attempt, detail=detail,
                                   retries=1 if status == "retry" else 0)


def _recorded_statuses(runtime: Runtime) -> list[str]:
    with runtime.db.read() as s:
        rows = s.scalars(select(t.OutboxEvent.data).where(t.OutboxEvent.type == WorkflowStepRecorded.TYPE)
                         .order_by(t.OutboxEvent.position))
        return [row["status"] for row in rows if row["workflow_id"] == RUN]


def test_an_outcome_replaces_a_retry_of_the_same_attempt_once(runtime: Runtime) -> None:
    with runtime.db.session() as s:
        history.open_run(s, runtime.source, workflow_id=RUN, kind="order", subject_id="o1", seller_id="s1")
    assert _record(runtime, "retry", detail={"error": "HTTP 503"})
    assert not _record(runtime, "retry", detail={"error": "HTTP 503"})  # the same failure again: no new record

    assert _record(runtime, "ok", detail={"captured_minor": 1000})
    [row] = steps(runtime.db, RUN)
    assert (row.status, row.attempt, row.detail) == ("ok", 0, {"captured_minor": 1000})

    # An outcome is never replaced, by a retry or by another outcome.
    assert not _record(runtime, "retry", detail={"error": "HTTP 503"})
    assert not _record(runtime, "failed", detail={"error": "declined"})
    assert [r.status for r in steps(runtime.db, RUN)] == ["ok"]
    assert _recorded_statuses(runtime) == ["retry", "ok"]


def test_attempts_are_recorded_apart(runtime: Runtime) -> None:
    with runtime.db.session() as s:
        history.open_run(s, runtime.source, workflow_id=RUN, kind="order", subject_id="o1", seller_id="s1")
    assert _record(runtime, "retry", attempt=0)
    assert _record(runtime, "ok", attempt=1)
    assert [(r.attempt, r.status) for r in steps(runtime.db, RUN)] == [(0, "retry"), (1, "ok")]


def test_a_batch_writes_only_the_attempts_not_recorded_and_their_events(runtime: Runtime) -> None:
    with runtime.db.session() as s:
        history.open_run(s, runtime.source, workflow_id=RUN, kind="order", subject_id="o1", seller_id="s1")
    assert _record(runtime, "ok")  # capture, attempt 0, recorded before the batch
    batch = [
        history.StepRecord("authorize", "ok", StepClock(), detail={"payment_id": "p1"}),
        history.StepRecord("capture", "ok", StepClock(), detail={"captured_minor": 5}),
        history.StepRecord("label", "retry", StepClock(), detail={"error": "HTTP 503"}, retries=1),
    ]
    with runtime.db.session() as s:
        written = history.record_steps(s, runtime.source, workflow_id=RUN, kind="order", records=batch)
    assert written == [True, False, True]
    assert [(r.step, r.status) for r in steps(runtime.db, RUN)] == [("capture", "ok"), ("authorize", "ok"),
                                                                   ("label", "retry")]
    assert _recorded_statuses(runtime) == ["ok", "ok", "retry"]  # no second event for the capture
    with runtime.db.read() as s:
        run = s.get(WorkflowRun, RUN)
        assert run is not None and run.retries == 1


def _run_row(runtime: Runtime) -> WorkflowRun:
    with runtime.db.read() as s:
        run = s.get(WorkflowRun, RUN)
        assert run is not None
        return run


def _state_events(runtime: Runtime) -> list[tuple[str, str | None]]:
    with runtime.db.read() as s:
        rows = s.scalars(select(t.OutboxEvent.data).where(t.OutboxEvent.type == WorkflowStateChanged.TYPE)
                         .order_by(t.OutboxEvent.position))
        return [(row["state"], row.get("outcome")) for row in rows if row["workflow_id"] == RUN]


def test_set_state_moves_the_run_once_per_change_on_a_core_connection(runtime: Runtime) -> None:
    with runtime.db.write() as c:  # the hot paths' Core connection, not an ORM session
        history.open_run(c, runtime.source, workflow_id=RUN, kind="order", subject_id="o1", seller_id="s1")
        history.set_state(c, runtime.source, RUN, "running", human_steps=1)  # same state and outcome: no move...
    assert _run_row(runtime).human_steps == 0  # ...so nothing changes, not even the counter
    with runtime.db.write() as c:
        history.set_state(c, runtime.source, RUN, "waiting", outcome="review", human_steps=1)
        history.set_state(c, runtime.source, RUN, "completed", outcome="shipped", result={"label_id": "L1"})
        history.set_state(c, runtime.source, RUN, "completed", outcome="shipped", result={"label_id": "L2"})
    run = _run_row(runtime)
    assert (run.state, run.outcome, run.human_steps, run.result) == ("completed", "shipped", 1, {"label_id": "L1"})
    assert run.finished_at is not None
    assert _state_events(runtime) == [("running", None), ("waiting", "review"), ("completed", "shipped")]
