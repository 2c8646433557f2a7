"""Durable workflow runs (orders, vendor onboarding, disputes), for operators: each run with
its step history, lists filtered by kind and state, metrics, and the operator actions retry,
cancel (orders are compensated) and review (a decision for a run waiting on one)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from marketpilot.api.deps import PageDep, RuntimeDep, blocking, page_out
from marketpilot.api.security import Machine, Operator
from marketpilot.domain.entities import EntityId
from marketpilot.marketplace.page import Page
from marketpilot.workflows.base import VendorApplication
from marketpilot.workflows.views import RunSummary, RunView, WorkflowMetrics

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])
disputes = APIRouter(prefix="/v1/disputes", tags=["workflows"])
WorkflowId = Annotated[
    str, Path(description="Workflow id, e.g. `order:o1`.", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,159}$")
]


class ReviewIn(BaseModel):
    decision: Literal["approve", "reject"]


class Started(BaseModel):
    workflow_id: str = Field(description="Follow it with GET /v1/workflows/{workflow_id}.")


class OnboardingIn(BaseModel):
    seller_id: EntityId
    company_name: str = Field(min_length=1, max_length=300)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    vat_number: str | None = Field(None, max_length=20)
    registration_number: str | None = Field(None, max_length=40)
    iban: str | None = Field(None, max_length=42)
    documents: list[str] = Field(default_factory=list, max_length=20,
                                 description="Kinds supplied: registration_extract, id_document, bank_statement, ...")
    owners: list[str] = Field(default_factory=list, max_length=20, description="Beneficial owners' names.")
    expected_monthly_minor: int = Field(0, ge=0, le=10**15)


class DisputeIn(BaseModel):
    id: EntityId
    order_id: EntityId
    user_id: EntityId
    category: Literal["not_delivered", "damaged", "not_as_described", "unauthorized", "other"]
    description: str = Field("", max_length=5000)
    evidence: list[str] = Field(default_factory=list, max_length=20, description="References to photos, messages.")
    amount_minor: int | None = Field(None, ge=1, le=10**15, description="Claimed amount; the order total if omitted.")


@router.post("/onboarding", status_code=202)
async def submit_onboarding(body: OnboardingIn, rt: RuntimeDep, _who: Machine) -> Started:
    """Start a seller's onboarding run (once per seller: submitting again returns the same run)."""
    application = VendorApplication(**{**body.model_dump(), "documents": tuple(body.documents),
                                       "owners": tuple(body.owners)})
    return Started(workflow_id=await blocking(rt.workflows.submit_onboarding, application))


@disputes.post("", status_code=202)
async def open_dispute(body: DisputeIn, rt: RuntimeDep, _who: Machine) -> Started:
    """A buyer opens a dispute on an order (through the storefront's service key)."""
    workflow_id = await blocking(
        rt.workflows.open_dispute, dispute_id=body.id, order_id=body.order_id, user_id=body.user_id,
        category=body.category, description=body.description, evidence=body.evidence, amount_minor=body.amount_minor,
    )
    return Started(workflow_id=workflow_id)


@router.get("")
async def list_workflows(
    rt: RuntimeDep,
    _who: Operator,
    page: PageDep,
    kind: Annotated[Literal["order", "onboarding", "dispute"] | None, Query(description="Only this kind.")] = None,
    state: Annotated[str | None, Query(max_length=24, description="Only runs in this state.")] = None,
) -> Page[RunSummary]:
    return page_out(await blocking(rt.workflows.list, limit=page.limit, cursor=page.cursor, kind=kind, state=state))


@router.get("/metrics")
async def workflow_metrics(rt: RuntimeDep, _who: Operator) -> WorkflowMetrics:
    return await blocking(rt.workflows.metrics)


@router.get("/{workflow_id}")
async def get_workflow(workflow_id: WorkflowId, rt: RuntimeDep, _who: Operator) -> RunView:
    return await blocking(rt.workflows.get, workflow_id)


@router.post("/{workflow_id}/retry")
async def retry_workflow(workflow_id: WorkflowId, rt: RuntimeDep, _who: Operator) -> RunView:
    return await blocking(rt.workflows.retry, workflow_id)


@router.post("/{workflow_id}/cancel")
async def cancel_workflow(workflow_id: WorkflowId, rt: RuntimeDep, _who: Operator) -> RunView:
    return await blocking(rt.workflows.cancel, workflow_id)


@router.post("/{workflow_id}/review")
async def review_workflow(workflow_id: WorkflowId, body: ReviewIn, rt: RuntimeDep, _who: Operator) -> RunView:
    return await blocking(rt.workflows.review, workflow_id, body.decision)
