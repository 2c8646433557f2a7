"""Exactly once under SIGKILL: the worker is killed at every step boundary of the order saga
in turn (before each step's effect, and after the effect but before DBOS checkpoints it),
restarted each time, and every order must complete exactly once. Checked from the sandbox
providers' own records (authorisations, captures, labels per order) and from the database
(stock, locks, step records, notifications)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from wf_support import Runtime, Sandboxes, inventory, outbox_count, place, run_state, steps

from marketpilot.platform.db import schema as t
from marketpilot.workflows.events import OrderNotification
from marketpilot.workflows.order import order_workflow_id
from marketpilot.workflows.tables import WorkflowStep

WORKER = Path(__file__).with_name("order_worker.py")
STEPS = ("load", "ship")  # the checkpointed steps (order.STEPS)
BOUNDARIES = [f"{step}:{phase}" for step in STEPS for phase in ("start", "done")]
# Inside the steps that do several things: stock locked but nothing recorded yet; payment
# authorised, captured, label bought, each with nothing recorded yet; stock sold but nothing
# committed yet.
BOUNDARIES.insert(BOUNDARIES.index("load:done"), "load:reserved")
BOUNDARIES[BOUNDARIES.index("ship:done"):BOUNDARIES.index("ship:done")] = [
    "ship:authorized", "ship:captured", "ship:labelled", "ship:committed"]
PROCESS_TIMEOUT = 120.0  # bounds a hung test; nothing asserts on durations


def _start(runtime: Runtime, sandboxes: Sandboxes, log: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MARKETPILOT_HOME": str(runtime.settings.home),
        "MARKETPILOT_DATABASE_URL": runtime.settings.db_url,
        "MARKETPILOT_WORKFLOWS_PAYMENT_URL": sandboxes.payment_server.url,
        "MARKETPILOT_WORKFLOWS_CARRIER_URL": sandboxes.carrier_server.url,
        "MARKETPILOT_WORKFLOWS_RETRY_BASE_DELAY": "0.01",
        "MARKETPILOT_WORKFLOWS_QUEUE_POLLING_INTERVAL": "0.02",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(WORKER.parent), os.environ.get("PYTHONPATH")])),
    }
    with log.open("a") as sink:  # a file, not a pipe: an unread pipe would block a chatty worker
        return subprocess.Popen([sys.executable, str(WORKER), "crash-test", *args], env=env, text=True,
                                stdout=sink, stderr=subprocess.STDOUT)


def _wait_completed(runtime: Runtime, order_ids: list[str], log: Path) -> None:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while time.monotonic() < deadline:
        with runtime.db.read() as s:
            from marketpilot.workflows.tables import WorkflowRun

            done = s.scalar(select(func.count()).select_from(WorkflowRun).where(
                WorkflowRun.id.in_([order_workflow_id(o) for o in order_ids]), WorkflowRun.state == "completed"))
        if done == len(order_ids):
            return
        time.sleep(0.1)
    with runtime.db.read() as s:
        from marketpilot.workflows.tables import WorkflowRun

        states = {r.id: r.state for r in s.scalars(select(WorkflowRun))}
    raise AssertionError(f"orders not completed in time: {states}; worker log: {log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_at_every_step_boundary_completes_every_order_exactly_once(
    runtime: Runtime, sandboxes: Sandboxes, tmp_path: Path
) -> None:
    orders: list[str] = []
    for i, boundary in enumerate(BOUNDARIES):
        order_id = f"k{i:02d}"
        place(runtime, order_id)
        orders.append(order_id)
        marker = tmp_path / f"killed-{i}"
        log = tmp_path / f"worker-{i}.log"
        worker = _start(runtime, sandboxes, log, "--kill-at", boundary, "--marker", str(marker))
        try:
            code = worker.wait(timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise AssertionError(f"the worker never reached {boundary}") from None
        assert code == -9, f"worker for {boundary} exited with {code}: {log.read_text()[-3000:]}"
        assert marker.exists()
    survivor_log = tmp_path / "survivor.log"
    survivor = _start(runtime, sandboxes, survivor_log)
    try:
        _wait_completed(runtime, orders, survivor_log)
    finally:
        survivor.terminate()
        survivor.wait(timeout=PROCESS_TIMEOUT)

    payments, carrier = sandboxes.payments.records(), sandboxes.carrier.records()
    per_order = len(orders)
    assert Counter(i["reference"] for i in payments["intents"]) == Counter({o: 1 for o in orders})
    assert Counter(c["reference"] for c in payments["captures"]) == Counter({o: 1 for o in orders})
    assert Counter(lb["reference"] for lb in carrier["labels"]) == Counter({o: 1 for o in orders})
    assert payments["refunds"] == [] and payments["voids"] == []
    assert inventory(runtime.db) == (100 - per_order, 0)
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(t.CheckoutLock)) == 0
        statuses = {oid: st for oid, st in s.execute(select(t.Order.id, t.Order.status))}
        step_rows = list(s.scalars(select(WorkflowStep)))
    assert set(statuses.values()) == {"shipped"}
    for order_id in orders:
        assert outbox_count(runtime.db, OrderNotification.TYPE, order_id) == 2
        run = run_state(runtime.db, order_workflow_id(order_id))
        assert (run.state, run.compensations) == ("completed", 0)
    ok_steps = Counter((r.workflow_id, r.step) for r in step_rows if r.status == "ok")
    assert max(ok_steps.values()) == 1


RANDOM_KILLS = int(os.environ.get("MARKETPILOT_TEST_RANDOM_KILLS", "20"))


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_random_sigkills_during_a_stream_of_orders_lose_and_duplicate_nothing(
    runtime: Runtime, sandboxes: Sandboxes, tmp_path: Path
) -> None:
    """Orders keep arriving while the worker is SIGKILLed at random moments (0.2-1.5 s after
    it is ready) `RANDOM_KILLS` times (100 for the issue's target; 20 by default to keep the
    suite short); a final worker drains the rest."""
    import random

    rng = random.Random(11)
    stock = 3 * RANDOM_KILLS + 10
    runtime.inventory.set_quantity("l1", stock)
    orders: list[str] = []
    for kill in range(RANDOM_KILLS):
        for _ in range(3):
            order_id = f"r{len(orders):03d}"
            place(runtime, order_id)
            orders.append(order_id)
        log = tmp_path / f"random-{kill}.log"
        worker = _start(runtime, sandboxes, log)
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while "ready" not in (log.read_text() if log.exists() else ""):
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"the worker never became ready: {log.read_text()[-6000:]}"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.2, 1.5))
        worker.kill()
        assert worker.wait(timeout=PROCESS_TIMEOUT) == -9
    survivor_log = tmp_path / "survivor.log"
    survivor = _start(runtime, sandboxes, survivor_log)
    try:
        _wait_completed(runtime, orders, survivor_log)
    finally:
        survivor.terminate()
        survivor.wait(timeout=PROCESS_TIMEOUT)
    payments, carrier = sandboxes.payments.records(), sandboxes.carrier.records()
    assert Counter(c["reference"] for c in payments["captures"]) == Counter({o: 1 for o in orders})
    assert Counter(i["reference"] for i in payments["intents"]) == Counter({o: 1 for o in orders})
    assert Counter(lb["reference"] for lb in carrier["labels"]) == Counter({o: 1 for o in orders})
    assert inventory(runtime.db) == (stock - len(orders), 0)
    for order_id in orders:
        assert outbox_count(runtime.db, OrderNotification.TYPE, order_id) == 2


# Where the worker dies inside `pay_and_ship` (after the call, before anything is recorded) and
# what the providers must show once the cancelled order has been compensated.
CANCELLED_MID_PAYMENT = {
    "ship:authorized": {"voided": True, "refunded": False, "label_cancelled": False},
    "ship:captured": {"voided": False, "refunded": True, "label_cancelled": False},
    "ship:labelled": {"voided": False, "refunded": True, "label_cancelled": True},
}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_an_order_cancelled_while_its_worker_lies_dead_mid_payment_is_undone_at_the_providers(
    runtime: Runtime, sandboxes: Sandboxes, tmp_path: Path
) -> None:
    """The worker is SIGKILLed inside ``pay_and_ship`` after a provider call and before any
    record of it; an operator cancels the run before a worker recovers it. The run's records
    name no payment or label, so the compensation asks the providers what was done for the
    order and undoes it: the authorisation voided, the capture refunded, the label cancelled,
    the stock released."""
    from marketpilot.workflows.service import WorkflowService

    service = WorkflowService(runtime.db, runtime.settings)
    orders = {}
    try:
        for i, boundary in enumerate(CANCELLED_MID_PAYMENT):
            order_id = f"x{i:02d}"
            place(runtime, order_id)
            orders[order_id] = boundary
            marker, log = tmp_path / f"cancel-killed-{i}", tmp_path / f"cancel-worker-{i}.log"
            worker = _start(runtime, sandboxes, log, "--kill-at", boundary, "--marker", str(marker))
            assert worker.wait(timeout=PROCESS_TIMEOUT) == -9, log.read_text()[-3000:]
            assert marker.read_text() == order_workflow_id(order_id)
            service.cancel(order_workflow_id(order_id))  # nobody has recovered the run yet
        survivor_log = tmp_path / "cancel-survivor.log"
        survivor = _start(runtime, sandboxes, survivor_log)  # runs the queued compensations
        try:
            deadline = time.monotonic() + PROCESS_TIMEOUT
            while any(run_state(runtime.db, order_workflow_id(o)).outcome != "operator_cancelled" for o in orders):
                assert survivor.poll() is None and time.monotonic() < deadline, survivor_log.read_text()[-3000:]
                time.sleep(0.1)
        finally:
            survivor.terminate()
            survivor.wait(timeout=PROCESS_TIMEOUT)
    finally:
        service.close()

    payments, carrier = sandboxes.payments.records(), sandboxes.carrier.records()
    intents = {i["reference"]: i for i in payments["intents"]}
    for order_id, boundary in orders.items():
        want = CANCELLED_MID_PAYMENT[boundary]
        intent = intents[order_id]  # the call the dead worker made, which no record names
        assert intent["status"] == ("canceled" if want["voided"] else "refunded"), (boundary, intent)
        assert [v["reference"] for v in payments["voids"]].count(order_id) == int(want["voided"])
        refunds = [r for r in payments["refunds"] if r["reference"] == order_id]
        assert [r["amount"] for r in refunds] == ([intent["amount_captured"]] if want["refunded"] else []), boundary
        labels = [lb for lb in carrier["labels"] if lb["reference"] == order_id]
        assert [lb["status"] for lb in labels] == (["cancelled"] if want["label_cancelled"] else []), boundary
        run = run_state(runtime.db, order_workflow_id(order_id))
        assert (run.state, run.outcome) == ("cancelled", "operator_cancelled")
        assert [s.status for s in steps(runtime.db, order_workflow_id(order_id)) if s.step == "discover"] == ["ok"]
    assert len(payments["captures"]) == 2  # the dead workers' own; nothing captured after the cancel
    assert inventory(runtime.db) == (100, 0)
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(t.CheckoutLock)) == 0
        assert set(s.scalars(select(t.Order.status))) == {"cancelled"}
