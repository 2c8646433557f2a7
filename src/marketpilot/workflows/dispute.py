"""Dispute resolution, a durable DBOS workflow opened by a buyer through the API::

    open -> triage (category, amount, evidence -> priority, route)
         -> auto-resolve common cases | route to an agent queue with a case summary
         -> wait for the agent within the SLA -> on expiry escalate, wait one more SLA
         -> on second expiry refund (buyer protection) -> finish

Automatic resolutions, each decided on what the providers report, not on the claim:
- *not delivered* and the carrier's tracking shows no delivery -> refund;
- *damaged* with evidence and an amount at most `SMALL_CLAIM_MINOR` -> refund (cheaper
  than a review);
Everything else is routed: not delivered but tracked as delivered -> ``logistics``;
unauthorised -> ``fraud``; not as described / damaged -> ``merchant_support``; other ->
``general``. The agent's decision arrives as a message (``approve`` refunds, ``reject``
closes for the seller).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from dbos import DBOS
from sqlalchemy import update

from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.workflows import history
from marketpilot.workflows.environment import current as _env
from marketpilot.workflows.events import ManualTaskOpened
from marketpilot.workflows.history import StepClock
from marketpilot.workflows.integrations.errors import Declined, ProviderError, Unavailable
from marketpilot.workflows.tables import Dispute, WorkflowRun, WorkflowTask

KIND = "dispute"
DISPUTE_WORKFLOW = "marketpilot.workflows.dispute"
REVIEW_TOPIC = "review"
SMALL_CLAIM_MINOR = 2_500
CATEGORIES = ("not_delivered", "damaged", "not_as_described", "unauthorized", "other")
Category = Literal["not_delivered", "damaged", "not_as_described", "unauthorized", "other"]


@dataclass(frozen=True, slots=True)
class DisputeCase:
    dispute_id: str
    order_id: str
    user_id: str
    seller_id: str
    category: str
    amount_minor: int
    currency: str
    description: str
    evidence: tuple[str, ...]
    payment_id: str | None
    tracking_number: str | None


@dataclass(frozen=True, slots=True)
class Triage:
    action: Literal["refund", "route"]
    queue: str
    priority: str
    reason: str
    summary: str


def dispute_workflow_id(dispute_id: str) -> str:
    return f"dispute:{dispute_id}"


def open_dispute(db: Database, source: str, *, dispute_id: str, order_id: str, user_id: str, category: str,
                 description: str, evidence: list[str], amount_minor: int | None) -> DisputeCase:
    """Record a buyer's dispute (checked against the order) and return its case; the caller
    then starts :func:`dispute_workflow`. Opening the same id twice returns the first case."""
    if category not in CATEGORIES:
        raise InvalidInput(f"category must be one of {', '.join(CATEGORIES)}")
    with db.session() as s:
        order = s.get(t.Order, order_id)
        if order is None or order.user_id != user_id:
            raise NotFound(f"order {order_id!r} of buyer {user_id!r} not found")
        amount = order.total_minor if amount_minor is None else amount_minor
        if not 0 < amount <= order.total_minor:
            raise InvalidInput(f"amount_minor must be between 1 and the order total {order.total_minor}")
        row = s.get(Dispute, dispute_id)
        if row is None:
            row = Dispute(id=dispute_id, order_id=order_id, user_id=user_id, seller_id=order.seller_id,
                          category=category, amount_minor=amount, currency=order.currency, description=description,
                          evidence=list(evidence), state="open", created_at=utcnow(), updated_at=utcnow())
            s.add(row)
        elif row.order_id != order_id:
            raise InvalidInput(f"dispute {dispute_id!r} exists for another order")
        run = s.get(WorkflowRun, f"order:{order_id}")
        result = run.result if run is not None else {}
        return DisputeCase(
            dispute_id=row.id, order_id=row.order_id, user_id=row.user_id, seller_id=row.seller_id,
            category=row.category, amount_minor=row.amount_minor, currency=row.currency,
            description=row.description, evidence=tuple(row.evidence or ()),
            payment_id=result.get("payment_id"), tracking_number=result.get("tracking_number"),
        )


def summary_of(case: DisputeCase, tracking: str | None) -> str:
    """The case summary an agent reads first."""
    return (f"dispute {case.dispute_id} on order {case.order_id}: {case.category.replace('_', ' ')}, "
            f"{case.amount_minor} {case.currency} minor units claimed by buyer {case.user_id} against seller "
            f"{case.seller_id}; {len(case.evidence)} evidence item(s); tracking: {tracking or 'none'}; "
            f"buyer says: {case.description[:280]!r}")


def triage(case: DisputeCase, tracking: str | None) -> Triage:
    summary = summary_of(case, tracking)
    big = case.amount_minor > 10 * SMALL_CLAIM_MINOR
    priority = "high" if big else "normal"
    if case.category == "not_delivered":
        if tracking is not None and tracking != "delivered" and case.payment_id:
            return Triage("refund", "auto", priority, f"carrier reports {tracking}, not delivered", summary)
        return Triage("route", "logistics", priority, f"carrier reports {tracking or 'no tracking'}", summary)
    if case.category == "damaged" and case.evidence and case.amount_minor <= SMALL_CLAIM_MINOR and case.payment_id:
        return Triage("refund", "auto", "low", "small damaged-item claim with evidence", summary)
    if case.category == "unauthorized":
        return Triage("route", "fraud", "high", "buyer reports an unauthorised payment", summary)
    if case.category in ("damaged", "not_as_described"):
        return Triage("route", "merchant_support", priority, "item condition disputed", summary)
    return Triage("route", "general", priority, "no automatic rule applies", summary)


@DBOS.workflow(name=DISPUTE_WORKFLOW)
def dispute_workflow(case: DisputeCase) -> dict[str, Any]:
    workflow_id = DBOS.workflow_id or dispute_workflow_id(case.dispute_id)
    decision = _triage_step(workflow_id, case)
    if decision.action == "refund":
        return _resolve(workflow_id, case, "refunded", decision.reason, human=False)
    sla = _env().dispute_sla
    _route_step(workflow_id, case, decision, sla)
    answer = DBOS.recv(REVIEW_TOPIC, timeout_seconds=sla)
    if answer is None:
        _escalate_step(workflow_id, sla)
        answer = DBOS.recv(REVIEW_TOPIC, timeout_seconds=sla)
        if answer is None:
            return _resolve(workflow_id, case, "refunded", "SLA expired twice: refunded under buyer protection",
                            human=False)
    if answer == "approve":
        return _resolve(workflow_id, case, "refunded", "agent decided for the buyer", human=True)
    return _resolve(workflow_id, case, "rejected", "agent decided for the seller", human=True)


def _resolve(workflow_id: str, case: DisputeCase, resolution: str, reason: str, *, human: bool) -> dict[str, Any]:
    refund_id = None
    if resolution == "refunded" and case.payment_id:
        refund_id = _refund_step(workflow_id, case)
    return _finish_step(workflow_id, case, resolution, reason, refund_id, human)


@DBOS.step(name="marketpilot.dispute.triage")
def _triage_step(workflow_id: str, case: DisputeCase) -> Triage:
    env = _env()
    clock = StepClock()
    tracking = None
    if case.tracking_number:
        try:
            tracking = env.carrier.track(case.tracking_number).status
        except ProviderError as exc:  # no tracking answer: route it rather than guess
            tracking = None
            history_detail = {"tracking_error": str(exc)}
        else:
            history_detail = {}
    else:
        history_detail = {}
    decision = triage(case, tracking)
    with env.db.session() as s:
        history.open_run(s, env.source, workflow_id=workflow_id, kind=KIND, subject_id=case.dispute_id,
                         seller_id=case.seller_id)
        history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="triage", status="ok", clock=clock,
                            detail={"action": decision.action, "queue": decision.queue, "priority": decision.priority,
                                    "reason": decision.reason, "tracking": tracking, **history_detail})
        s.execute(update(Dispute).where(Dispute.id == case.dispute_id).values(state="triaged", updated_at=utcnow()))
    return decision


@DBOS.step(name="marketpilot.dispute.route")
def _route_step(workflow_id: str, case: DisputeCase, decision: Triage, sla: float) -> None:
    env = _env()
    clock = StepClock()
    with env.db.session() as s:
        if history.recorded(s, workflow_id, "route") is not None:
            return
        s.add(WorkflowTask(workflow_id=workflow_id, kind="dispute_case", queue=decision.queue,
                           priority=decision.priority, summary=decision.summary, status="open",
                           due_at=utcnow() + timedelta(seconds=sla), created_at=utcnow()))
        history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="route", status="ok", clock=clock,
                            detail={"queue": decision.queue},
                            events=(ManualTaskOpened(workflow_id=workflow_id, kind="dispute_case", queue=decision.queue,
                                                     priority=decision.priority, summary=decision.summary),))
        history.set_state(s, env.source, workflow_id, "waiting", outcome=f"queue:{decision.queue}",
                          reason=decision.reason)
        s.execute(update(Dispute).where(Dispute.id == case.dispute_id).values(state="routed", updated_at=utcnow()))


@DBOS.step(name="marketpilot.dispute.escalate")
def _escalate_step(workflow_id: str, sla: float) -> None:
    env = _env()
    clock = StepClock()
    with env.db.session() as s:
        if history.recorded(s, workflow_id, "escalate") is not None:
            return
        now = utcnow()
        s.execute(update(WorkflowTask).where(WorkflowTask.workflow_id == workflow_id)
                  .values(status="escalated", priority="urgent", escalated_at=now, due_at=now + timedelta(seconds=sla)))
        history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="escalate", status="ok",
                            clock=clock, detail={"reason": "SLA expired"})
        history.set_state(s, env.source, workflow_id, "waiting", outcome="escalated", reason="SLA expired")


def _transient(error: BaseException) -> bool:
    return isinstance(error, Unavailable)


@DBOS.step(name="marketpilot.dispute.refund", retries_allowed=True, max_attempts=10, interval_seconds=0.5,
           backoff_rate=2.0, should_retry=_transient)
def _refund_step(workflow_id: str, case: DisputeCase) -> str | None:
    """Refund once (idempotency key of the run); transient failures are retried with
    backoff by DBOS; a decline is recorded and leaves the dispute resolved without refund id."""
    env = _env()
    clock = StepClock()
    assert case.payment_id is not None
    try:
        refund = env.payments.refund(case.payment_id, amount_minor=case.amount_minor,
                                     idempotency_key=f"{workflow_id}:refund")
    except Declined as exc:
        with env.db.session() as s:
            history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="refund", status="failed",
                                clock=clock, detail={"error": str(exc)})
        return None
    with env.db.session() as s:
        history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="refund", status="ok", clock=clock,
                            detail={"refund_id": refund.id, "amount_minor": refund.amount_minor})
    return refund.id


@DBOS.step(name="marketpilot.dispute.finish")
def _finish_step(workflow_id: str, case: DisputeCase, resolution: str, reason: str, refund_id: str | None,
                 human: bool) -> dict[str, Any]:
    env = _env()
    result = {"dispute_id": case.dispute_id, "resolution": resolution, "reason": reason, "refund_id": refund_id,
              "automated": not human}
    with env.db.session() as s:
        s.execute(update(WorkflowTask).where(WorkflowTask.workflow_id == workflow_id, WorkflowTask.status != "closed")
                  .values(status="closed", decision=resolution, closed_at=utcnow()))
        s.execute(update(Dispute).where(Dispute.id == case.dispute_id)
                  .values(state="resolved", resolution=resolution, updated_at=utcnow()))
        history.set_state(s, env.source, workflow_id, "resolved", outcome=resolution, reason=reason, result=result,
                          human_steps=1 if human else 0)
    return result
