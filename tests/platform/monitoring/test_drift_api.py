"""`GET /v1/monitoring/drift` on SQLite and PostgreSQL: who may read it, filters, response shape.

The router is mounted here the way `api.app` mounts every `/v1` router (the app registers
it once the lead wires it in)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.domain.entities import SellerIn
from marketpilot.platform.auth import Role, create_key
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.monitoring.drift import DriftMonitor, Reference, WindowSpec
from marketpilot.runtime import Runtime

WINDOW = 300


@pytest.fixture
def runtime(db: Database, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(load_settings(database_url=db.url, home=tmp_path / "home"), migrate=False)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bearer(rt: Runtime, role: Role) -> dict[str, str]:
    if role is Role.MERCHANT:
        rt.sellers.create(SellerIn(id="s1", name="Shop one"))
    key = create_key(rt.db, role, seller_id="s1" if role is Role.MERCHANT else None)[1]
    return {"Authorization": f"Bearer {key}"}


def store_windows(rt: Runtime) -> None:
    """Two models, three windows each; the third window of `fraud` has x shifted by 2 sd."""
    rng = np.random.default_rng(0)
    reference = Reference.fit(rng.normal(size=(5_000, 1)), rng.random(5_000), names=["x"])
    mon = DriftMonitor(rt.db, source=rt.source, window=WindowSpec.count(WINDOW))
    for model in ("fraud", "ranker"):
        recorder = mon.register(model, reference, version="1")
        for w in range(3):
            shift = 2.0 if (model, w) == ("fraud", 2) else 0.0
            x = rng.normal(shift, 1.0, size=(WINDOW, 1))
            times = (w * WINDOW + np.arange(WINDOW)) * 1.0 + 1.7e9
            recorder.record_many(x, rng.random(WINDOW), times)
    mon.drain()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.SERVICE])
def test_operator_and_service_keys_read_the_latest_window_per_model(
    client: TestClient, runtime: Runtime, role: Role
) -> None:
    store_windows(runtime)
    response = client.get("/v1/monitoring/drift", headers=bearer(runtime, role))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["model"], i["verdict"]) for i in items] == [("fraud", "drift"), ("ranker", "ok")]
    fraud = items[0]
    assert fraud["drifted_features"] == ["x"] and fraud["observations"] == WINDOW
    assert [f["name"] for f in fraud["features"]] == ["x", "prediction"]
    assert fraud["features"][0]["test"] == "ks" and fraud["features"][0]["psi"] > 0.2
    assert fraud["thresholds"] == {"psi": 0.2, "alpha": 0.01, "correction": "holm", "min_count": 200,
                                   "ks_method": "asymp"}


def test_a_merchant_key_may_not_read_drift_reports(client: TestClient, runtime: Runtime) -> None:
    response = client.get("/v1/monitoring/drift", headers=bearer(runtime, Role.MERCHANT))
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "a merchant key may not call this route"


def test_without_a_key_the_route_answers_401(client: TestClient) -> None:
    response = client.get("/v1/monitoring/drift")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_model_and_window_select_one_models_latest_windows(client: TestClient, runtime: Runtime) -> None:
    store_windows(runtime)
    response = client.get("/v1/monitoring/drift?model=fraud&window=2", headers=bearer(runtime, Role.OPERATOR))
    items = response.json()["items"]
    assert [(i["model"], i["verdict"]) for i in items] == [("fraud", "drift"), ("fraud", "ok")]
    assert items[0]["window_end"] > items[1]["window_end"]


def test_a_model_without_reports_gives_an_empty_list(client: TestClient, runtime: Runtime) -> None:
    response = client.get("/v1/monitoring/drift?model=unmonitored", headers=bearer(runtime, Role.OPERATOR))
    assert response.status_code == 200 and response.json() == {"items": []}


@pytest.mark.parametrize(
    ("query", "field"),
    [("window=0", "window"), ("window=101", "window"), ("model=bad%20name", "model")],
)
def test_bad_query_parameters_are_named_in_the_422(client: TestClient, runtime: Runtime, query: str, field: str) -> None:
    response = client.get(f"/v1/monitoring/drift?{query}", headers=bearer(runtime, Role.OPERATOR))
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]


def test_the_route_is_documented_with_its_response_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/monitoring/drift"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DriftReportList"
    }
    assert {"401", "403", "422"} <= set(operation["responses"])
    assert "DriftReportOut" in spec["components"]["schemas"]

