from __future__ import annotations

from api_seed import Keys, auth
from fastapi.testclient import TestClient


def test_operator_creates_and_lists_sellers(client: TestClient, keys: Keys) -> None:
    h = auth(keys.operator)
    created = client.post("/v1/sellers", json={"id": "s3", "name": "Three", "country": "DE"}, headers=h)
    assert created.status_code == 201
    assert [s["id"] for s in client.get("/v1/sellers", headers=h).json()["items"]] == ["s1", "s2", "s3"]


def test_merchant_sees_only_its_own_seller(client: TestClient, keys: Keys) -> None:
    h = auth(keys.merchant)
    assert [s["id"] for s in client.get("/v1/sellers", headers=h).json()["items"]] == ["s1"]
    assert client.get("/v1/sellers/s1", headers=h).json()["name"] == "Shop s1"


def test_seller_country_must_be_two_capitals(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/sellers", json={"id": "s3", "name": "x", "country": "Germany"},
                           headers=auth(keys.operator))
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("country: String should match pattern")


def test_storefront_syncs_users(client: TestClient, keys: Keys) -> None:
    h = auth(keys.service)
    assert client.post("/v1/users", json={"id": "u2", "region": "us-east"}, headers=h).status_code == 201
    assert client.post("/v1/users", json={"id": "u2", "region": "us-east"}, headers=h).status_code == 409
    assert client.get("/v1/users/u2", headers=h).json()["region"] == "us-east"
    assert [u["id"] for u in client.get("/v1/users?region=us-east", headers=h).json()["items"]] == ["u2"]
    assert client.get("/v1/users/nobody", headers=h).status_code == 404


def test_a_users_email_is_kept_and_checked(client: TestClient, keys: Keys) -> None:
    h = auth(keys.service)
    body = {"id": "u3", "region": "eu", "email": "ana@example.com"}
    assert client.post("/v1/users", json=body, headers=h).status_code == 201
    assert client.get("/v1/users/u3", headers=h).json()["email"] == "ana@example.com"
    bad = client.post("/v1/users", json={**body, "id": "u4", "email": "Ana <ana@example.com>"}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("email: String should match pattern")
    assert client.get("/v1/users/u3", headers=auth(keys.merchant)).status_code == 403
