"""The experiments routes end to end: create, report outcomes, automatic halt, ramp, kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.platform.auth import Role, create_key
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.runtime import Runtime


@pytest.fixture
def api(sqlite_db: Database, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    rt = Runtime(load_settings(database_url=sqlite_db.url, home=tmp_path / "home"), migrate=False)
    op = {"Authorization": f"Bearer {create_key(rt.db, Role.OPERATOR, name='ops')[1]}"}
    svc = {"Authorization": f"Bearer {create_key(rt.db, Role.SERVICE, name='storefront')[1]}"}
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        yield client, op, svc
    rt.close()


BODY = {"id": "rank-v2", "name": "ranker v2", "stages": [0.05, 0.5], "min_stage_sessions": 100_000,
        "guardrails": {"min_sessions": 200}}


def test_outcomes_from_a_harmful_arm_halt_it_and_assignment_falls_back(api: tuple[TestClient, dict, dict]) -> None:
    client, op, svc = api
    created = client.post("/v1/experiments", json=BODY, headers=op)
    assert created.status_code == 201, created.text
    assert created.json()["share"] == 0.05
    rng = np.random.default_rng(0)
    for arm, conversion in (("control", 0.3), ("treatment", 0.1)):
        gmv = np.where(rng.random(2_000) < conversion, 40.0, 0.0)
        r = client.post("/v1/experiments/rank-v2/outcomes", headers=svc,
                        json={"arm": arm, "sessions": [{"gmv": float(g)} for g in gmv]})
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "halted"
    gmv_guard = next(g for g in body["arms"][1]["guardrails"] if g["name"] == "gmv_per_session")
    assert gmv_guard["status"] == "breach" and gmv_guard["high"] < 0
    a = client.get("/v1/experiments/rank-v2/assignment?unit_id=u1", headers=svc)
    assert a.json() == {"experiment_id": "rank-v2", "unit_id": "u1", "arm": "control"}


def test_ramp_then_kill_then_list(api: tuple[TestClient, dict, dict]) -> None:
    client, op, _ = api
    client.post("/v1/experiments", json=BODY, headers=op)
    assert client.post("/v1/experiments/rank-v2/ramp", headers=op).json()["share"] == 0.5
    killed = client.post("/v1/experiments/rank-v2/kill", json={"reason": "complaints"}, headers=op)
    assert killed.status_code == 200
    assert killed.json()["status"] == "killed" and killed.json()["halt_reason"] == "killed: complaints"
    again = client.post("/v1/experiments/rank-v2/kill", json={"reason": "again"}, headers=op)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    listed = client.get("/v1/experiments?status=killed", headers=op).json()["items"]
    assert [e["id"] for e in listed] == ["rank-v2"]


def test_errors_are_clear(api: tuple[TestClient, dict, dict]) -> None:
    client, op, svc = api
    assert client.get("/v1/experiments/nope", headers=op).status_code == 404
    bad = client.post("/v1/experiments", json={**BODY, "stages": [0.5, 0.1]}, headers=op)
    assert bad.status_code == 422 and "increase strictly" in bad.json()["error"]["message"]
    client.post("/v1/experiments", json=BODY, headers=op)
    wrong_arm = client.post("/v1/experiments/rank-v2/outcomes", headers=svc, json={"arm": "zzz", "sessions": []})
    assert wrong_arm.status_code == 422 and "has no arm 'zzz'" in wrong_arm.json()["error"]["message"]
    negative = client.post("/v1/experiments/rank-v2/outcomes", headers=svc,
                           json={"arm": "control", "sessions": [{"gmv": -1}]})
    assert negative.status_code == 422
    assert client.post("/v1/experiments/rank-v2/kill", json={"reason": "x"}, headers=svc).status_code == 403
