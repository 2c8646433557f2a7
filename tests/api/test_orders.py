from __future__ import annotations

from api_seed import Keys, auth
from fastapi.testclient import TestClient


def test_storefront_places_and_reads_an_order(client: TestClient, keys: Keys) -> None:
    h = auth(keys.service)
    order = {"id": "o9", "user_id": "u1", "lines": [{"listing_id": "l3", "quantity": 2}], "shipping_region": "eu"}
    placed = client.post("/v1/orders", json=order, headers=h)
    assert placed.status_code == 201, placed.text
    assert (placed.json()["seller_id"], placed.json()["total_minor"], placed.json()["status"]) == ("s1", 2000, "placed")
    assert client.get("/v1/orders/o9", headers=h).json()["lines"] == [
        {"listing_id": "l3", "quantity": 2, "unit_price_minor": 1000}
    ]


def test_a_merchant_key_asking_for_another_sellers_order_gets_404_and_an_operator_key_gets_it(
    client: TestClient, keys: Keys
) -> None:
    assert client.get("/v1/orders/o2", headers=auth(keys.merchant)).status_code == 404
    assert client.get("/v1/orders/o2", headers=auth(keys.operator)).json()["seller_id"] == "s2"


def test_merchant_order_list_holds_only_its_orders(client: TestClient, keys: Keys) -> None:
    items = client.get("/v1/orders?user_id=u1", headers=auth(keys.merchant)).json()["items"]
    assert [o["id"] for o in items] == ["o1"]


def test_order_status_filter(client: TestClient, keys: Keys) -> None:
    h = auth(keys.operator)
    assert [o["id"] for o in client.get("/v1/orders?status=placed", headers=h).json()["items"]] == ["o1", "o2"]
    assert client.get("/v1/orders?status=shipped", headers=h).json()["items"] == []


def test_order_for_unknown_listing_is_a_422(client: TestClient, keys: Keys) -> None:
    order = {"id": "o9", "user_id": "u1", "lines": [{"listing_id": "nope", "quantity": 1}]}
    response = client.post("/v1/orders", json=order, headers=auth(keys.service))
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid_input",
        "message": "unknown listings: nope",
        "request_id": response.headers["x-request-id"],
    }


def test_order_with_repeated_listing_names_the_rule(client: TestClient, keys: Keys) -> None:
    lines = [{"listing_id": "l1", "quantity": 1}, {"listing_id": "l1", "quantity": 1}]
    response = client.post("/v1/orders", json={"id": "o9", "user_id": "u1", "lines": lines}, headers=auth(keys.service))
    assert response.status_code == 422
    assert "each listing may appear in one order line only" in response.json()["error"]["message"]
