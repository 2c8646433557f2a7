"""Vendor onboarding, a durable DBOS workflow::

    open -> assess (documents, VAT / registration formats, IBAN checksum, screening, risk tier)
         -> approve | reject | manual review task (waits for an operator's decision) -> finish

The risk policy (:func:`assess`) is a pure function so it can be evaluated offline against a
review-everything baseline:

- a format failure (missing document, VAT or registration number not in the country's
  format, bad IBAN checksum) rejects with the reasons, for the seller to fix and resubmit;
- a screening match (company or owner name at or above the screener's `hit` score) is tier
  *high*, a near match tier *medium*; both go to manual review, never auto-approval;
- a country outside the EU, or an expected monthly volume above `HIGH_VOLUME_MINOR`, is
  tier *medium* (review);
- everything else is tier *low* and approved automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dbos import DBOS
from sqlalchemy import update

from marketpilot.platform.db.schema import utcnow
from marketpilot.workflows import history
from marketpilot.workflows.base import VendorApplication
from marketpilot.workflows.environment import current as _env
from marketpilot.workflows.events import ManualTaskOpened
from marketpilot.workflows.history import StepClock
from marketpilot.workflows.screening import Screener, ScreeningHit
from marketpilot.workflows.tables import WorkflowTask
from marketpilot.workflows.vendor_checks import (
    EU_COUNTRIES,
    CheckResult,
    check_documents,
    check_iban,
    check_registration,
    check_vat,
)

KIND = "onboarding"
ONBOARDING_WORKFLOW = "marketpilot.workflows.onboarding"
REVIEW_TOPIC = "review"
HIGH_VOLUME_MINOR = 5_000_000

Tier = Literal["low", "medium", "high"]
Decision = Literal["approve", "review", "reject"]


@dataclass(frozen=True, slots=True)
class Assessment:
    decision: Decision
    tier: Tier
    reasons: tuple[str, ...]
    checks: tuple[CheckResult, ...] = ()
    hits: tuple[ScreeningHit, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision, "tier": self.tier, "reasons": list(self.reasons),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "hits": [{"name": h.query, "matched": h.matched, "list": h.list_name, "score": round(h.score, 1)}
                     for h in self.hits],
        }


def onboarding_workflow_id(seller_id: str) -> str:
    return f"onboarding:{seller_id}"


def assess(application: VendorApplication, screener: Screener) -> Assessment:
    country = application.country.upper()
    checks = (
        check_documents(list(application.documents)),
        check_vat(country, application.vat_number),
        check_registration(country, application.registration_number),
        check_iban(application.iban),
    )
    hits = tuple(screener.screen([application.company_name, *application.owners]))
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    strong = [h for h in hits if h.score >= screener.hit]
    if strong:
        reasons = tuple(f"screening: {h.query!r} matches {h.matched!r} on {h.list_name} ({h.score:.0f})" for h in strong)
        return Assessment("review", "high", reasons + tuple(failed), checks, hits)
    if failed:
        return Assessment("reject", "medium" if hits else "low", tuple(failed), checks, hits)
    notes = [f"screening: near match {h.query!r} ~ {h.matched!r} ({h.score:.0f})" for h in hits]
    if country not in EU_COUNTRIES:
        notes.append(f"country {country} outside the EU")
    if application.expected_monthly_minor > HIGH_VOLUME_MINOR:
        notes.append(f"expected volume {application.expected_monthly_minor} above {HIGH_VOLUME_MINOR}")
    if notes:
        return Assessment("review", "medium", tuple(notes), checks, hits)
    return Assessment("approve", "low", ("all checks passed, no screening match",), checks, hits)


@DBOS.workflow(name=ONBOARDING_WORKFLOW)
def onboarding_workflow(application: VendorApplication) -> dict[str, Any]:
    workflow_id = DBOS.workflow_id or onboarding_workflow_id(application.seller_id)
    assessment = _assess_step(workflow_id, application)
    if assessment.decision == "review":
        _open_task_step(workflow_id, application, assessment)
        answer = DBOS.recv(REVIEW_TOPIC, timeout_seconds=_env().review_timeout)
        approved = answer == "approve"
        return _finish_step(workflow_id, assessment, "completed" if approved else "rejected",
                            "approved" if approved else "rejected",
                            f"manual review: {answer or 'timed out'}", human=True)
    if assessment.decision == "reject":
        return _finish_step(workflow_id, assessment, "rejected", "rejected", "; ".join(assessment.reasons), human=False)
    return _finish_step(workflow_id, assessment, "completed", "approved", assessment.reasons[0], human=False)


@DBOS.step(name="marketpilot.onboarding.assess")
def _assess_step(workflow_id: str, application: VendorApplication) -> Assessment:
    env = _env()
    clock = StepClock()
    assessment = assess(application, Screener.from_db(env.db))
    with env.db.session() as s:
        history.open_run(s, env.source, workflow_id=workflow_id, kind=KIND, subject_id=application.seller_id,
                         seller_id=application.seller_id)
        history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="assess", status="ok",
                            clock=clock, detail=assessment.to_dict())
    return assessment


@DBOS.step(name="marketpilot.onboarding.review_open")
def _open_task_step(workflow_id: str, application: VendorApplication, assessment: Assessment) -> None:
    env = _env()
    clock = StepClock()
    priority = "high" if assessment.tier == "high" else "normal"
    summary = f"seller {application.seller_id} ({application.company_name}, {application.country}), tier " \
              f"{assessment.tier}: " + "; ".join(assessment.reasons)
    with env.db.session() as s:
        if history.recorded(s, workflow_id, "review_open") is not None:
            return
        s.add(WorkflowTask(workflow_id=workflow_id, kind="onboarding_review", queue="onboarding", priority=priority,
                           summary=summary, status="open", created_at=utcnow()))
        history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="review_open", status="ok",
                            clock=clock, events=(ManualTaskOpened(workflow_id=workflow_id, kind="onboarding_review",
                                                                  queue="onboarding", priority=priority,
                                                                  summary=summary),))
        history.set_state(s, env.source, workflow_id, "waiting", outcome="manual_review", reason=summary)


@DBOS.step(name="marketpilot.onboarding.finish")
def _finish_step(workflow_id: str, assessment: Assessment, state: str, outcome: str, reason: str, *,
                 human: bool) -> dict[str, Any]:
    env = _env()
    result = {"state": state, "outcome": outcome, "tier": assessment.tier, "assessment": assessment.to_dict()}
    with env.db.session() as s:
        if human:
            s.execute(update(WorkflowTask).where(WorkflowTask.workflow_id == workflow_id)
                      .values(status="closed", decision=outcome, closed_at=utcnow()))
        history.set_state(s, env.source, workflow_id, state, outcome=outcome, reason=reason, result=result,
                          human_steps=1 if human else 0)
    return result
