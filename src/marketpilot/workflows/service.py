"""The workflows' request path: what the API calls to see runs and act on them.

Reads come from this capability's tables (no DBOS needed in the API process). Operator
actions go to DBOS through a client on its system database: *retry* resumes a run DBOS
stopped (ERROR, cancelled, too many recovery attempts) from its last checkpoint; *cancel*
stops a run at its next step and, for orders, enqueues the compensation run that undoes
what the step records say was done; *review* delivers a reviewer's decision to a run
waiting on one.
"""

from __future__ import annotations

import builtins
import threading
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select

from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.marketplace.page import Page
from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.workflows.base import VendorApplication
from marketpilot.workflows.history import FINAL_STATES
from marketpilot.workflows.tables import WorkflowRun, WorkflowStep, WorkflowTask
from marketpilot.workflows.views import (
    KindMetrics,
    RunSummary,
    RunView,
    StepLatency,
    StepView,
    TaskView,
    WorkflowMetrics,
)

KINDS = ("order", "onboarding", "dispute")
RETRYABLE = frozenset({"ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
CANCELLABLE = frozenset({"PENDING", "ENQUEUED", "DELAYED"})
LATENCY_WINDOW = 20_000  # latest step attempts that the latency metrics cover
REVIEW_DECISIONS = frozenset({"approve", "reject"})
REVIEW_TOPIC = "review"  # the topic every workflow waiting on a person listens on


def _summary(run: WorkflowRun) -> dict[str, Any]:
    return {c: getattr(run, c) for c in RunSummary.model_fields}


class WorkflowService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def _dbos(self) -> Any:
        with self._lock:
            if self._client is None:
                from marketpilot.platform import (
                    durable,  # DBOS is heavy to import; only operator actions need it
                )

                self._client = durable.client(self.settings)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.destroy()
                self._client = None

    # -- reads ---------------------------------------------------------------------------
    def _run(self, workflow_id: str, scope: str | None) -> WorkflowRun:
        with self.db.read() as s:
            run = s.get(WorkflowRun, workflow_id)
        if run is None or (scope is not None and run.seller_id != scope):
            raise NotFound(f"workflow {workflow_id!r} not found")
        return run

    def get(self, workflow_id: str, *, scope: str | None = None, durable_status: bool = True) -> RunView:
        run = self._run(workflow_id, scope)
        with self.db.read() as s:
            steps = list(s.scalars(select(WorkflowStep).where(WorkflowStep.workflow_id == workflow_id)
                                   .order_by(WorkflowStep.id)))
            tasks = list(s.scalars(select(WorkflowTask).where(WorkflowTask.workflow_id == workflow_id)
                                   .order_by(WorkflowTask.id)))
        status = self._durable_status(workflow_id) if durable_status else None
        return RunView(
            **_summary(run), result=run.result or {}, durable_status=status,
            steps=[StepView.model_validate(s, from_attributes=True) for s in steps],
            tasks=[TaskView.model_validate(t, from_attributes=True) for t in tasks],
        )

    def _durable_status(self, workflow_id: str) -> str | None:
        try:
            handle = self._dbos().retrieve_workflow(workflow_id)
            return str(handle.get_status().status)
        except Exception:  # noqa: BLE001 - DBOS may not be set up where the API runs; the row still answers
            return None

    def list(
        self, *, limit: int, cursor: str | None = None, kind: str | None = None, state: str | None = None,
        scope: str | None = None,
    ) -> Page[RunSummary]:
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
        q = select(WorkflowRun).order_by(WorkflowRun.id).limit(limit + 1)
        if cursor:
            q = q.where(WorkflowRun.id > cursor)
        if kind:
            q = q.where(WorkflowRun.kind == kind)
        if state:
            q = q.where(WorkflowRun.state == state)
        if scope is not None:
            q = q.where(WorkflowRun.seller_id == scope)
        with self.db.read() as s:
            rows = list(s.scalars(q))
        items = [RunSummary(**_summary(r)) for r in rows[:limit]]
        return Page(items=items, next_cursor=items[-1].id if len(rows) > limit else None)

    def metrics(self) -> WorkflowMetrics:
        with self.db.read() as s:
            runs = s.execute(select(WorkflowRun.kind, WorkflowRun.state, WorkflowRun.retries,
                                    WorkflowRun.compensations, WorkflowRun.human_steps)).all()
            latest = s.execute(select(WorkflowStep.step, WorkflowStep.duration_ms).where(WorkflowStep.status == "ok")
                               .order_by(WorkflowStep.id.desc()).limit(LATENCY_WINDOW)).all()
        kinds = []
        for kind in KINDS:
            mine = [r for r in runs if r.kind == kind]
            finished = [r for r in mine if r.state in FINAL_STATES]
            automated = sum(1 for r in finished if r.human_steps == 0)
            kinds.append(KindMetrics(
                kind=kind, runs=len(mine), by_state=dict(Counter(r.state for r in mine)),
                retries=sum(r.retries for r in mine), compensations=sum(r.compensations for r in mine),
                finished=len(finished), automated=automated,
                automation_rate=automated / len(finished) if finished else None,
            ))
        durations: dict[str, list[float]] = defaultdict(list)
        for step, ms in latest:
            durations[step].append(ms)
        latency = []
        for step, values in sorted(durations.items()):
            p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
            latency.append(StepLatency(step=step, count=len(values), p50_ms=round(float(p50), 3),
                                       p95_ms=round(float(p95), 3), p99_ms=round(float(p99), 3)))
        return WorkflowMetrics(kinds=kinds, step_latency=latency)

    # -- operator actions ------------------------------------------------------------------
    def retry(self, workflow_id: str) -> RunView:
        run = self._run(workflow_id, None)
        if run.outcome == "operator_cancelled":
            raise Conflict(f"workflow {workflow_id!r} was cancelled and compensated; start a new one instead")
        status = self._durable_status(workflow_id)
        if status not in RETRYABLE:
            raise Conflict(f"workflow {workflow_id!r} is {status or 'unknown to DBOS'}; only runs that stopped "
                           f"({', '.join(sorted(RETRYABLE))}) can be retried")
        self._dbos().resume_workflow(workflow_id)
        return self.get(workflow_id)

    def cancel(self, workflow_id: str) -> RunView:
        run = self._run(workflow_id, None)
        if run.state in FINAL_STATES:
            raise Conflict(f"workflow {workflow_id!r} already finished ({run.state})")
        status = self._durable_status(workflow_id)
        if status not in CANCELLABLE:
            raise Conflict(f"workflow {workflow_id!r} is {status or 'unknown to DBOS'}; only running runs can be cancelled")
        client = self._dbos()
        client.cancel_workflow(workflow_id)
        if run.kind == "order":
            from marketpilot.workflows.engine import WORKFLOW_QUEUE
            from marketpilot.workflows.order import COMPENSATE_WORKFLOW

            client.enqueue({"queue_name": WORKFLOW_QUEUE, "workflow_name": COMPENSATE_WORKFLOW,
                            "workflow_id": f"{workflow_id}:compensate"}, workflow_id)
        return self.get(workflow_id)

    def _enqueue(self, workflow_name: str, workflow_id: str, *args: Any) -> None:
        from marketpilot.workflows.engine import WORKFLOW_QUEUE

        self._dbos().enqueue({"queue_name": WORKFLOW_QUEUE, "workflow_name": workflow_name, "workflow_id": workflow_id},
                             *args)

    def submit_onboarding(self, application: VendorApplication) -> str:
        """Start (once per seller) the onboarding run of `application`; returns its id."""
        from marketpilot.workflows.onboarding import ONBOARDING_WORKFLOW, onboarding_workflow_id

        workflow_id = onboarding_workflow_id(application.seller_id)
        self._enqueue(ONBOARDING_WORKFLOW, workflow_id, application)
        return workflow_id

    def open_dispute(self, *, dispute_id: str, order_id: str, user_id: str, category: str, description: str,
                     evidence: builtins.list[str], amount_minor: int | None) -> str:
        """Record the buyer's dispute and start (once per dispute id) its run; returns its id."""
        from marketpilot.workflows.dispute import DISPUTE_WORKFLOW, dispute_workflow_id, open_dispute

        case = open_dispute(self.db, self.settings.event_source, dispute_id=dispute_id, order_id=order_id,
                            user_id=user_id, category=category, description=description, evidence=evidence,
                            amount_minor=amount_minor)
        workflow_id = dispute_workflow_id(case.dispute_id)
        self._enqueue(DISPUTE_WORKFLOW, workflow_id, case)
        return workflow_id

    def review(self, workflow_id: str, decision: str) -> RunView:
        if decision not in REVIEW_DECISIONS:
            raise InvalidInput(f"decision must be one of {', '.join(sorted(REVIEW_DECISIONS))}")
        run = self._run(workflow_id, None)
        if run.state != "waiting":
            raise Conflict(f"workflow {workflow_id!r} is not waiting for a review (state {run.state})")
        self._dbos().send(workflow_id, decision, topic=REVIEW_TOPIC)
        return self.get(workflow_id)
