from __future__ import annotations

from api_seed import Keys, auth
from fastapi.testclient import TestClient


def test_seller_sets_and_reads_stock(client: TestClient, keys: Keys) -> None:
    h = auth(keys.merchant)
    assert client.put("/v1/listings/l1/inventory", json={"quantity": 9}, headers=h).json()["quantity"] == 9
    level = client.get("/v1/listings/l1/inventory", headers=h).json()
    assert (level["quantity"], level["reserved"], level["available"]) == (9, 0, 9)


def test_a_committed_lock_removes_stock_and_a_released_one_returns_it(client: TestClient, keys: Keys) -> None:
    h = auth(keys.service)
    lock = client.post("/v1/listings/l1/inventory/locks", json={"quantity": 2, "holder": "cart-1"}, headers=h)
    assert lock.status_code == 201, lock.text
    assert client.get("/v1/listings/l1/inventory", headers=h).json()["available"] == 3
    committed = client.post(f"/v1/inventory/locks/{lock.json()['id']}/commit", headers=h).json()
    assert (committed["quantity"], committed["reserved"]) == (3, 0)

    lock = client.post("/v1/listings/l1/inventory/locks", json={"quantity": 3, "holder": "cart-2"}, headers=h)
    released = client.post(f"/v1/inventory/locks/{lock.json()['id']}/release", headers=h).json()
    assert (released["quantity"], released["available"]) == (3, 3)


def test_locking_more_than_available_is_a_409(client: TestClient, keys: Keys) -> None:
    response = client.post(
        "/v1/listings/l1/inventory/locks", json={"quantity": 6, "holder": "cart-1"}, headers=auth(keys.service)
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert "5 units available, 6 requested" in response.json()["error"]["message"]


def test_unknown_lock_is_a_404(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/inventory/locks/nope/commit", headers=auth(keys.service))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_quantity_below_reserved_is_a_409(client: TestClient, keys: Keys) -> None:
    client.post("/v1/listings/l1/inventory/locks", json={"quantity": 4, "holder": "c"}, headers=auth(keys.service))
    response = client.put("/v1/listings/l1/inventory", json={"quantity": 1}, headers=auth(keys.merchant))
    assert response.status_code == 409
    assert "below the 4 units held" in response.json()["error"]["message"]
