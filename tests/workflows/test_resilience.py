"""Circuit breakers and operator control: a provider outage opens the breaker, orders wait
and resume with none lost; an operator cancels a run stuck on a provider and the order is
compensated; a cancelled run can be retried."""

from __future__ import annotations

import os
import threading
import time

import pytest
from wf_support import Runtime, Sandboxes, inventory, place, run_state, steps

from marketpilot.workflows.engine import Installation, start_order
from marketpilot.workflows.history import FINAL_STATES
from marketpilot.workflows.integrations.breaker import CircuitBreaker
from marketpilot.workflows.integrations.errors import BreakerOpen, Unavailable
from marketpilot.workflows.order import order_workflow_id
from marketpilot.workflows.service import WorkflowService


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# How long the carrier outage lasts once the breaker has opened: 1 s keeps the suite short;
# the target is a minute (MARKETPILOT_TEST_OUTAGE_SECONDS=60).
OUTAGE_SECONDS = float(os.environ.get("MARKETPILOT_TEST_OUTAGE_SECONDS", "1"))


def _fail() -> None:
    raise Unavailable("p", "op", "HTTP 503")


def test_breaker_opens_after_the_threshold_probes_once_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=3, reset_seconds=10, clock=clock)
    for _ in range(3):
        with pytest.raises(Unavailable):
            breaker.call("op", _fail)
    assert breaker.stats.state == "open"
    calls = []
    with pytest.raises(BreakerOpen):
        breaker.call("op", lambda: calls.append(1))
    assert calls == []  # refused without calling
    clock.now = 10.0
    assert breaker.stats.state == "half_open"
    with pytest.raises(Unavailable):
        breaker.call("op", _fail)  # the probe fails: open again
    assert breaker.stats.state == "open" and breaker.stats.opened == 2
    clock.now = 20.0
    assert breaker.call("op", lambda: 42) == 42
    assert breaker.stats.state == "closed" and breaker.stats.consecutive_failures == 0


def test_each_operation_has_its_own_circuit_so_a_healthy_endpoint_does_not_mask_a_failing_one() -> None:
    clock = Clock()
    breaker = CircuitBreaker("carrier", failure_threshold=3, reset_seconds=10, clock=clock)

    def label_fails() -> None:
        raise Unavailable("carrier", "label", "HTTP 503")

    for _ in range(3):  # rates answer between failed labels, as in an order stream
        assert breaker.call("rate", lambda: "ok") == "ok"
        with pytest.raises(Unavailable):
            breaker.call("label", label_fails)
    assert breaker.stats_for("label").state == "open"
    assert breaker.stats_for("rate").state == "closed"
    assert breaker.stats.state == "open" and breaker.stats.opened == 1
    assert breaker.call("rate", lambda: "still ok") == "still ok"
    with pytest.raises(BreakerOpen):
        breaker.call("label", lambda: None)


def test_a_label_only_outage_opens_the_label_circuit_and_every_order_resumes(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    sandboxes.carrier.set_fault("error", operation="label")  # rates answer, labels 503
    try:
        orders = [f"lbl{i}" for i in range(6)]
        for order_id in orders:
            place(runtime, order_id)
        handles = [start_order(o) for o in orders]
        carrier_breaker = installed.transports[1].breaker
        deadline = time.monotonic() + 30
        while carrier_breaker.stats_for("label").opened == 0:
            assert time.monotonic() < deadline, "the label circuit never opened"
            time.sleep(0.05)
        assert carrier_breaker.stats_for("rates").state == "closed"
        sandboxes.carrier.clear_faults()
        results = [h.get_result(polling_interval_sec=0.05) for h in handles]
        assert {r["state"] for r in results} == {"completed"}
        labels = sandboxes.carrier.records()["labels"]
        assert sorted(lb["reference"] for lb in labels) == sorted(orders)
    finally:
        sandboxes.carrier.clear_faults()
    assert inventory(runtime.db) == (100 - len(orders), 0)


def test_a_carrier_outage_opens_the_breaker_and_every_order_resumes(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    sandboxes.carrier.set_fault("error")  # every carrier call answers 503 until cleared
    try:
        orders = [f"out{i}" for i in range(8)]
        for order_id in orders:
            place(runtime, order_id)
        handles = [start_order(o) for o in orders]
        carrier_breaker = installed.transports[1].breaker
        deadline = time.monotonic() + 30
        while carrier_breaker.stats.opened == 0:  # rates fail first: their circuit opens
            assert time.monotonic() < deadline, "the breaker never opened"
            time.sleep(0.05)
        time.sleep(OUTAGE_SECONDS)  # the outage goes on with the breaker cycling open / half-open
        assert all(run_state(runtime.db, order_workflow_id(o)).state not in FINAL_STATES for o in orders)  # all waiting
        sandboxes.carrier.clear_faults()
        results = [h.get_result(polling_interval_sec=0.05) for h in handles]
        assert {r["state"] for r in results} == {"completed"}
        assert carrier_breaker.stats.rejected > 0
        labels = sandboxes.carrier.records()["labels"]
        assert sorted(lb["reference"] for lb in labels) == sorted(orders)
    finally:
        sandboxes.carrier.clear_faults()  # also when the test fails: runs in flight must be able to finish
    assert inventory(runtime.db) == (100 - len(orders), 0)


def test_an_operator_cancels_a_stuck_order_and_it_is_compensated_then_cannot_be_retried(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    sandboxes.carrier.set_fault("error", operation="label")
    place(runtime, "stuck", quantity=4)
    start_order("stuck")
    wf = order_workflow_id("stuck")
    deadline = time.monotonic() + 30
    while not any(s.step == "label" for s in steps(runtime.db, wf)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    service = WorkflowService(runtime.db, runtime.settings)
    try:
        view = service.cancel(wf)
        assert view.durable_status == "CANCELLED"
        deadline = time.monotonic() + 60
        while run_state(runtime.db, wf).state != "cancelled":
            assert time.monotonic() < deadline, "the compensation never finished"
            time.sleep(0.1)
        records = sandboxes.payments.records()
        assert len(records["captures"]) == 1 and len(records["refunds"]) == 1
        assert inventory(runtime.db) == (100, 0)
        assert run_state(runtime.db, wf).outcome == "operator_cancelled"
        from marketpilot.domain.errors import Conflict

        with pytest.raises(Conflict):
            service.retry(wf)
        with pytest.raises(Conflict):
            service.cancel(wf)
    finally:
        sandboxes.carrier.clear_faults()
        service.close()


def test_a_cancelled_review_can_be_retried_and_then_approved(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation
) -> None:
    from marketpilot.workflows.fraud_rules import RuleFraudCheck

    installed.environment.fraud = RuleFraudCheck(review_minor=500)
    place(runtime, "rev")
    handle = start_order("rev")
    wf = order_workflow_id("rev")
    deadline = time.monotonic() + 30
    while run_state_or_none(runtime, wf) != "waiting":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    service = WorkflowService(runtime.db, runtime.settings)
    try:
        from dbos import DBOS

        DBOS.cancel_workflow(wf)  # stopped by DBOS itself (no compensation run): retry resumes it
        assert service.get(wf).durable_status == "CANCELLED"
        service.retry(wf)
        threading.Timer(0.5, lambda: service.review(wf, "approve")).start()
        assert handle.get_result(polling_interval_sec=0.05)["state"] == "completed"
        assert run_state(runtime.db, wf).human_steps == 1
    finally:
        service.close()


def run_state_or_none(runtime: Runtime, workflow_id: str) -> str | None:
    try:
        return run_state(runtime.db, workflow_id).state
    except AssertionError:
        return None
