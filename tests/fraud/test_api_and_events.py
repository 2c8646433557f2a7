from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from marketpilot.api import create_app
from marketpilot.domain.entities import ListingIn, OrderIn, OrderLineIn, SellerIn, UserIn
from marketpilot.platform.auth import Role, create_key
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.events import Dispatcher
from marketpilot.runtime import Runtime

SCORE = {"transaction_id": "t1", "user_id": "u1", "amount_minor": 12_500, "currency": "EUR",
         "instrument_fingerprint": "card-1", "device_id": "dev-1", "ip": "192.0.2.1", "email_domain": "mail.example",
         "ip_region": "eu-west", "shipping_region": "eu-west"}


@pytest.fixture
def rt(db: Database, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(database_url=db.url, home=tmp_path / "home"), migrate=False)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


def bearer(rt: Runtime, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(rt.db, role, name=role.value)[1]}"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_minor": -1}, "amount_minor"),
        ({"currency": "ZZZ"}, "currency"),
        ({"user_id": "not an id"}, "user_id"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"device_id": "dev/1"}, "device_id"),
    ],
)
def test_bad_input_gets_422_naming_the_field(client: TestClient, rt: Runtime, change: dict[str, object],
                                             field: str) -> None:
    r = client.post("/v1/fraud/score", json={**SCORE, **change}, headers=bearer(rt, Role.SERVICE))
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]


def test_score_then_review_queue_then_analyst_label(client: TestClient, rt: Runtime) -> None:
    service = bearer(rt, Role.SERVICE)
    r = client.post("/v1/fraud/score", json=SCORE, headers=service)
    assert r.status_code == 200, r.text
    body = r.json()
    # no model is registered in this home: the documented fallback decides, and says so
    assert body["action"] == "review" and body["strategy"] == "fallback"
    assert "no fraud model" in body["fallback_reason"]
    assert client.get("/v1/fraud/reviews", headers=service).status_code == 403
    operator = bearer(rt, Role.OPERATOR)
    queue = client.get("/v1/fraud/reviews", headers=operator).json()["items"]
    assert [i["transaction_id"] for i in queue] == ["t1"]
    done = client.post(f"/v1/fraud/reviews/{queue[0]['id']}", json={"label": "fraud", "note": "chargeback"},
                       headers=operator)
    assert done.status_code == 200, done.text
    assert done.json()["label"] == 1
    assert client.get("/v1/fraud/reviews", headers=operator).json()["items"] == []
    with rt.db.read() as s:
        assert s.get(t.Transaction, "t1").label == 1  # type: ignore[union-attr]
    again = client.post(f"/v1/fraud/reviews/{queue[0]['id']}", json={"label": "legitimate"}, headers=operator)
    assert again.status_code == 409
    assert client.post("/v1/fraud/reviews/424242", json={"label": "fraud"}, headers=operator).status_code == 404
    too_big = client.post(f"/v1/fraud/reviews/{2**64}", json={"label": "fraud"}, headers=operator)
    assert too_big.status_code == 422 and "decision_id" in too_big.text  # not a 500 from the database driver


def test_placed_orders_are_decided_and_the_verdict_is_published_once(rt: Runtime) -> None:
    rt.sellers.create(SellerIn(id="s1", name="Shop"))
    rt.listings.create(ListingIn(id="l1", seller_id="s1", title="Lamp", category_path="home", price_minor=5000,
                                 currency="EUR", quantity=5))
    rt.users.create(UserIn(id="u1", region="eu-west"))
    rt.orders.place(OrderIn(id="o1", user_id="u1", lines=[OrderLineIn(listing_id="l1", quantity=1)],
                            shipping_region="eu-west"))
    dispatcher = Dispatcher(rt.db, rt.event_bus)
    dispatcher.run_once()
    dispatcher.run_once()  # the verdict event itself is delivered too; nothing is decided twice
    with rt.db.read() as s:
        types = list(s.scalars(select(t.OutboxEvent.type).where(t.OutboxEvent.type.like("marketpilot.fraud.%"))))
        rows = list(s.execute(select(t.Transaction.id, t.Transaction.order_id)))
    assert types == ["marketpilot.fraud.review_required"]  # no model registered: review, by the fallback
    assert rows == [("o:o1", "o1")]
