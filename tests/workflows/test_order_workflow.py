"""The order saga in process, against real loopback sandbox providers, on SQLite and
PostgreSQL: the happy path, declines with compensation, transient failures with retries,
timeouts made safe by idempotency keys, fraud decisions and idempotent starts."""

from __future__ import annotations

from typing import Any

from dbos import DBOS
from wf_support import Runtime, Sandboxes, inventory, outbox_count, place, run_state, steps

from marketpilot.domain.events import PaymentAuthorized, ShipmentCreated
from marketpilot.platform.db import schema as t
from marketpilot.workflows.engine import Installation, start_order
from marketpilot.workflows.events import OrderNotification
from marketpilot.workflows.fraud_rules import RuleFraudCheck
from marketpilot.workflows.order import REVIEW_TOPIC, order_workflow_id

TIMEOUT = 60


def _run(order_id: str) -> dict[str, Any]:
    return start_order(order_id).get_result(polling_interval_sec=0.02)


def _order_status(runtime: Runtime, order_id: str) -> str:
    with runtime.db.read() as s:
        row = s.get(t.Order, order_id)
        assert row is not None
        return row.status


def test_an_order_flows_to_label_and_notification(runtime: Runtime, sandboxes: Sandboxes, installed: Installation) -> None:
    place(runtime, "o1", quantity=2)
    result = _run("o1")
    assert result["state"] == "completed" and result["outcome"] == "shipped"
    wf = order_workflow_id("o1")
    assert [s.step for s in steps(runtime.db, wf)] == ["load", "fraud", "reserve", "authorize", "capture", "label",
                                                         "fulfil", "notify"]
    assert inventory(runtime.db) == (98, 0)
    assert _order_status(runtime, "o1") == "shipped"
    records = sandboxes.payments.records()
    assert [c["reference"] for c in records["captures"]] == ["o1"]
    assert records["captures"][0]["amount"] == 2_000
    assert [lb["reference"] for lb in sandboxes.carrier.records()["labels"]] == ["o1"]
    assert outbox_count(runtime.db, OrderNotification.TYPE, "o1") == 2
    assert outbox_count(runtime.db, PaymentAuthorized.TYPE, "o1") == 1
    assert outbox_count(runtime.db, ShipmentCreated.TYPE, "o1") == 1
    run = run_state(runtime.db, wf)
    assert (run.state, run.retries, run.compensations, run.human_steps) == ("completed", 0, 0, 0)


def test_a_declined_card_releases_the_stock(runtime: Runtime, sandboxes: Sandboxes, installed: Installation) -> None:
    sandboxes.payments.set_fault("decline", count=1, operation="authorize")
    place(runtime, "o2", quantity=3)
    result = _run("o2")
    assert (result["state"], result["outcome"]) == ("failed", "authorize_declined")
    assert inventory(runtime.db) == (100, 0)
    assert sandboxes.payments.records()["captures"] == []
    assert _order_status(runtime, "o2") == "failed"
    assert [s.step for s in steps(runtime.db, order_workflow_id("o2"))][-1] == "release"


def test_a_rejected_label_refunds_and_releases(runtime: Runtime, sandboxes: Sandboxes, installed: Installation) -> None:
    sandboxes.carrier.set_fault("decline", count=1, operation="label")
    place(runtime, "o3")
    result = _run("o3")
    assert (result["state"], result["outcome"]) == ("failed", "label_declined")
    records = sandboxes.payments.records()
    assert len(records["captures"]) == 1 and len(records["refunds"]) == 1
    assert records["refunds"][0]["amount"] == records["captures"][0]["amount"]
    assert inventory(runtime.db) == (100, 0)
    run = run_state(runtime.db, order_workflow_id("o3"))
    assert run.compensations == 2  # refund + release


def test_transient_errors_are_retried_with_the_same_idempotency_key(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    sandboxes.carrier.set_fault("error", count=2, operation="label")
    place(runtime, "o4")
    result = _run("o4")
    assert result["state"] == "completed"
    history = [(s.step, s.attempt, s.status) for s in steps(runtime.db, order_workflow_id("o4")) if s.step == "label"]
    assert history == [("label", 0, "retry"), ("label", 1, "retry"), ("label", 2, "ok")]
    assert run_state(runtime.db, order_workflow_id("o4")).retries == 2
    assert len(sandboxes.carrier.records()["labels"]) == 1


def test_a_capture_that_times_out_after_charging_is_not_charged_twice(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    # The sandbox captures, then answers after the client's 2 s timeout; the retry carries
    # the same idempotency key and gets the stored answer.
    sandboxes.payments.set_fault("timeout", count=1, operation="capture", delay=2.5)
    place(runtime, "o5")
    result = _run("o5")
    assert result["state"] == "completed"
    assert len(sandboxes.payments.records()["captures"]) == 1
    assert sandboxes.payments.calls["capture"] == 2


def test_fraud_rules_block_and_review(runtime: Runtime, sandboxes: Sandboxes, installed: Installation) -> None:
    installed.environment.fraud = RuleFraudCheck(review_minor=5_000, block_minor=50_000)
    place(runtime, "big", quantity=60)
    assert _run("big")["outcome"] == "fraud_block"
    place(runtime, "mid", quantity=6)
    handle = start_order("mid")
    wf = order_workflow_id("mid")
    _wait_for_state(runtime, wf, "waiting")
    DBOS.send(wf, "approve", topic=REVIEW_TOPIC)
    assert handle.get_result(polling_interval_sec=0.02)["state"] == "completed"
    run = run_state(runtime.db, wf)
    assert run.human_steps == 1
    assert inventory(runtime.db) == (94, 0)
    assert sandboxes.payments.records()["captures"][0]["reference"] == "mid"


def test_starting_an_order_twice_runs_it_once(runtime: Runtime, sandboxes: Sandboxes, installed: Installation) -> None:
    place(runtime, "o6")
    first, second = start_order("o6"), start_order("o6")
    assert first.get_workflow_id() == second.get_workflow_id()
    assert first.get_result(polling_interval_sec=0.02)["state"] == "completed"
    assert second.get_result(polling_interval_sec=0.02)["state"] == "completed"
    assert len(sandboxes.payments.records()["captures"]) == 1


def _wait_for_state(runtime: Runtime, workflow_id: str, state: str) -> None:
    import time

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with runtime.db.read() as s:
            from marketpilot.workflows.tables import WorkflowRun

            run = s.get(WorkflowRun, workflow_id)
            if run is not None and run.state == state:
                return
        time.sleep(0.05)
    raise AssertionError(f"{workflow_id} never reached {state}")
