"""The workflow routes over HTTP: a run with its step history, lists filtered by kind and
state, metrics, review/cancel conflicts, and disputes opened through the API and resolved by
the worker's DBOS (here, this process's)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from wf_support import Runtime, Sandboxes, place, run_state

from marketpilot.api import create_app
from marketpilot.runtime import Runtime as FullRuntime
from marketpilot.workflows.engine import Installation, start_order


@pytest.fixture
def client(runtime: Runtime, installed: Installation) -> Iterator[TestClient]:
    full = FullRuntime(runtime.settings, migrate=False)
    with TestClient(create_app(full)) as test_client:
        yield test_client
    if "workflows" in full.__dict__:
        full.workflows.close()
    full.close()


def test_runs_are_visible_filterable_and_measured(runtime: Runtime, sandboxes: Sandboxes, client: TestClient) -> None:
    place(runtime, "o1")
    assert start_order("o1").get_result()["state"] == "completed"
    sandboxes.payments.set_fault("decline", count=1, operation="authorize")
    place(runtime, "o2")
    assert start_order("o2").get_result()["state"] == "failed"

    run = client.get("/v1/workflows/order:o1").json()
    assert run["state"] == "completed" and run["durable_status"] == "SUCCESS"
    assert [s["step"] for s in run["steps"]][:3] == ["load", "fraud", "reserve"]
    assert all(s["duration_ms"] >= 0 for s in run["steps"])
    failed = client.get("/v1/workflows", params={"kind": "order", "state": "failed"}).json()
    assert [r["id"] for r in failed["items"]] == ["order:o2"]
    assert client.get("/v1/workflows", params={"kind": "bogus"}).status_code == 422
    assert client.get("/v1/workflows/order:nope").status_code == 404

    metrics = client.get("/v1/workflows/metrics").json()
    orders = next(k for k in metrics["kinds"] if k["kind"] == "order")
    assert (orders["finished"], orders["automated"], orders["automation_rate"]) == (2, 2, 1.0)
    assert orders["compensations"] == 1  # o2's stock released
    assert {s["step"] for s in metrics["step_latency"]} >= {"load", "capture", "label", "notify"}

    conflict = client.post("/v1/workflows/order:o1/review", json={"decision": "approve"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
    assert client.post("/v1/workflows/order:o1/cancel").status_code == 409
    assert client.post("/v1/workflows/order:o1/retry").status_code == 409


def test_a_dispute_opened_through_the_api_is_resolved(
    runtime: Runtime, sandboxes: Sandboxes, client: TestClient
) -> None:
    place(runtime, "o3")
    assert start_order("o3").get_result()["state"] == "completed"
    bad = client.post("/v1/disputes", json={"id": "d0", "order_id": "o3", "user_id": "someone-else",
                                            "category": "not_delivered"})
    assert bad.status_code == 404
    response = client.post("/v1/disputes", json={"id": "d1", "order_id": "o3", "user_id": "u1",
                                                 "category": "not_delivered", "description": "nothing came"})
    assert response.status_code == 202
    workflow_id = response.json()["workflow_id"]
    deadline = time.monotonic() + 60
    while True:
        try:
            if run_state(runtime.db, workflow_id).state == "resolved":
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, "the dispute was never resolved"
        time.sleep(0.1)
    assert run_state(runtime.db, workflow_id).outcome == "refunded"
    assert len(sandboxes.payments.records()["refunds"]) == 1
