"""Events of the workflows capability: every step and every state change of a run, and the
notifications an order sends (delivered by whoever subscribes: e-mail sender, webhook
relay). All are written through the outbox in the transaction that records the step."""

from __future__ import annotations

from typing import Any

from marketpilot.domain.events import EventData, register_event_type


class WorkflowStepRecorded(EventData, kw_only=True):
    TYPE = "marketpilot.workflow.step"
    AGGREGATE = "workflow_id"
    workflow_id: str
    kind: str
    step: str
    attempt: int
    status: str
    duration_ms: float
    detail: dict[str, Any] = {}


class WorkflowStateChanged(EventData, kw_only=True):
    TYPE = "marketpilot.workflow.state_changed"
    AGGREGATE = "workflow_id"
    workflow_id: str
    kind: str
    subject_id: str
    state: str
    outcome: str | None = None
    reason: str | None = None


class OrderNotification(EventData, kw_only=True):
    """A message to send about an order: `channel` is ``email`` (to the buyer) or
    ``webhook`` (to the seller's endpoint)."""

    TYPE = "marketpilot.order.notification"
    AGGREGATE = "order_id"
    order_id: str
    channel: str
    recipient: str
    template: str
    data: dict[str, Any] = {}


class ManualTaskOpened(EventData, kw_only=True):
    TYPE = "marketpilot.workflow.task_opened"
    AGGREGATE = "workflow_id"
    workflow_id: str
    kind: str
    queue: str
    priority: str
    summary: str


for _cls in (WorkflowStepRecorded, WorkflowStateChanged, OrderNotification, ManualTaskOpened):
    register_event_type(_cls)
