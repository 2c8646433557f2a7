"""What the API shows of workflow runs: a run with its step history and open tasks, and the
metrics operators watch (step latency, retries, compensations, automation rate)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class StepView(BaseModel):
    step: str
    attempt: int
    status: str = Field(description="ok, retry (transient failure, retried), failed, compensated or skipped.")
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    detail: dict[str, Any]


class TaskView(BaseModel):
    id: int
    kind: str
    queue: str
    priority: str
    summary: str
    status: str
    decision: str | None
    due_at: datetime | None
    escalated_at: datetime | None


class RunSummary(BaseModel):
    id: str
    kind: str = Field(description="order, onboarding or dispute.")
    subject_id: str
    seller_id: str | None
    state: str = Field(description="running, waiting, completed, failed, rejected, cancelled or resolved.")
    outcome: str | None
    reason: str | None
    retries: int
    compensations: int
    human_steps: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RunView(RunSummary):
    result: dict[str, Any]
    durable_status: str | None = Field(
        None, description="DBOS's own status of the run (PENDING, ENQUEUED, SUCCESS, ERROR, CANCELLED, ...)."
    )
    steps: list[StepView]
    tasks: list[TaskView]


class StepLatency(BaseModel):
    step: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


class KindMetrics(BaseModel):
    kind: str
    runs: int
    by_state: dict[str, int]
    retries: int
    compensations: int
    finished: int
    automated: int = Field(description="Finished runs with no human step.")
    automation_rate: float | None = Field(description="automated / finished; null before any run finished.")


class WorkflowMetrics(BaseModel):
    kinds: list[KindMetrics]
    step_latency: list[StepLatency] = Field(description="Successful step attempts of the latest runs, per step.")
