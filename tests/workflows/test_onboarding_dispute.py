"""Vendor onboarding and dispute resolution as durable runs, on SQLite and PostgreSQL:
auto-approval, screening hits waiting for a reviewer, rejections with reasons; disputes
auto-refunded on what the carrier reports, routed with a summary, escalated on SLA expiry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dbos import DBOS, SetWorkflowID
from sqlalchemy import select
from wf_support import Runtime, Sandboxes, place, run_state

from marketpilot.workflows.base import VendorApplication
from marketpilot.workflows.dispute import dispute_workflow, dispute_workflow_id, open_dispute
from marketpilot.workflows.engine import Installation, start_order
from marketpilot.workflows.onboarding import onboarding_workflow, onboarding_workflow_id
from marketpilot.workflows.screening import import_list
from marketpilot.workflows.tables import Dispute, WorkflowTask

CLEAN = {"country": "DE", "vat_number": "DE123456789", "registration_number": "HRB 12345",
         "iban": "DE89370400440532013000", "documents": ("registration_extract", "id_document", "bank_statement")}


def _onboard(application: VendorApplication) -> Any:
    with SetWorkflowID(onboarding_workflow_id(application.seller_id)):
        return DBOS.start_workflow(onboarding_workflow, application)


def _wait_state(runtime: Runtime, workflow_id: str, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if run_state(runtime.db, workflow_id).state == state:
                return
        except AssertionError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{workflow_id} never reached {state}")


def _tasks(runtime: Runtime, workflow_id: str) -> list[WorkflowTask]:
    with runtime.db.read() as s:
        return list(s.scalars(select(WorkflowTask).where(WorkflowTask.workflow_id == workflow_id)))


def test_onboarding_approves_rejects_and_holds_screening_hits(
    runtime: Runtime, installed: Installation, tmp_path: Path
) -> None:
    blacklist = tmp_path / "blacklist.csv"
    blacklist.write_text("name,country\nNorthwind Traders,GB\nIvan Petrov,\n")
    assert import_list(runtime.db, blacklist, "internal-blacklist") == 2
    assert import_list(runtime.db, blacklist, "internal-blacklist") == 0  # re-import adds nothing

    clean = _onboard(VendorApplication(seller_id="v1", company_name="Alpine Garden GmbH", owners=("Anna Weber",), **CLEAN))
    assert clean.get_result()["outcome"] == "approved"
    bad = _onboard(VendorApplication(seller_id="v2", company_name="Cedar Tools GmbH",
                                     **{**CLEAN, "iban": "DE89370400440532013001"}))
    rejected = bad.get_result()
    assert rejected["state"] == "rejected" and "iban" in run_state(runtime.db, "onboarding:v2").reason

    listed = _onboard(VendorApplication(seller_id="v3", company_name="Quiet Harbor Ltd", owners=("Ivan Petrow",), **CLEAN))
    _wait_state(runtime, "onboarding:v3", "waiting")
    (task,) = _tasks(runtime, "onboarding:v3")
    assert task.queue == "onboarding" and task.priority == "high" and "Ivan Petrow" in task.summary
    DBOS.send("onboarding:v3", "reject", topic="review")
    assert listed.get_result()["outcome"] == "rejected"
    run = run_state(runtime.db, "onboarding:v3")
    assert run.human_steps == 1 and run.result["tier"] == "high"


def _shipped_order(runtime: Runtime, order_id: str) -> dict[str, Any]:
    place(runtime, order_id, quantity=2)
    result = start_order(order_id).get_result(polling_interval_sec=0.02)
    assert result["state"] == "completed"
    return result


def _dispute(runtime: Runtime, dispute_id: str, order_id: str, category: str, **extra: Any) -> Any:
    case = open_dispute(runtime.db, runtime.source, dispute_id=dispute_id, order_id=order_id, user_id="u1",
                        category=category, description=extra.pop("description", "where is it?"),
                        evidence=extra.pop("evidence", []), amount_minor=extra.pop("amount_minor", None))
    with SetWorkflowID(dispute_workflow_id(dispute_id)):
        return DBOS.start_workflow(dispute_workflow, case)


def test_non_delivery_without_delivery_scan_is_refunded_automatically(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    _shipped_order(runtime, "o1")
    result = _dispute(runtime, "d1", "o1", "not_delivered").get_result()
    assert (result["resolution"], result["automated"]) == ("refunded", True)
    (refund,) = sandboxes.payments.records()["refunds"]
    assert refund["reference"] == "o1" and refund["amount"] == 2_000
    with runtime.db.read() as s:
        dispute = s.get(Dispute, "d1")
        assert dispute is not None and (dispute.state, dispute.resolution) == ("resolved", "refunded")


def test_a_delivered_parcel_is_routed_to_logistics_then_escalated_on_sla(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    shipped = _shipped_order(runtime, "o2")
    sandboxes.carrier.set_tracking(shipped["tracking_number"], "delivered")
    installed.environment.dispute_sla = 1.0
    handle = _dispute(runtime, "d2", "o2", "not_delivered", description="never arrived")
    wf = dispute_workflow_id("d2")
    _wait_state(runtime, wf, "waiting")
    (task,) = _tasks(runtime, wf)
    assert task.queue == "logistics" and "tracking: delivered" in task.summary and "never arrived" in task.summary
    deadline = time.monotonic() + 30
    while _tasks(runtime, wf)[0].status != "escalated":
        assert time.monotonic() < deadline, "the SLA never escalated the case"
        time.sleep(0.05)
    assert _tasks(runtime, wf)[0].priority == "urgent"
    DBOS.send(wf, "reject", topic="review")
    result = handle.get_result()
    assert (result["resolution"], result["automated"]) == ("rejected", False)
    assert sandboxes.payments.records()["refunds"] == []
    assert run_state(runtime.db, wf).human_steps == 1


def test_an_unauthorised_payment_claim_goes_to_the_fraud_queue(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    _shipped_order(runtime, "o3")
    handle = _dispute(runtime, "d3", "o3", "unauthorized", description="not me")
    wf = dispute_workflow_id("d3")
    _wait_state(runtime, wf, "waiting")
    (task,) = _tasks(runtime, wf)
    assert (task.queue, task.priority) == ("fraud", "high")
    DBOS.send(wf, "approve", topic="review")
    assert handle.get_result()["resolution"] == "refunded"
    assert len(sandboxes.payments.records()["refunds"]) == 1
