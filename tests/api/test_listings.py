from __future__ import annotations

from typing import Any

import pytest
from api_seed import Keys, auth
from fastapi.testclient import TestClient

NEW = {"id": "l9", "seller_id": "s1", "title": "Green scarf", "category_path": "fashion/scarves",
       "price_minor": 1999, "currency": "EUR", "quantity": 4}


def test_listing_crud_round_trip(client: TestClient, keys: Keys) -> None:
    h = auth(keys.merchant)
    created = client.post("/v1/listings", json=NEW, headers=h)
    assert created.status_code == 201, created.text
    assert created.json()["title"] == "Green scarf"
    assert client.get("/v1/listings/l9", headers=h).json()["price_minor"] == 1999
    patched = client.patch("/v1/listings/l9", json={"price_minor": 1500, "status": "draft"}, headers=h)
    assert (patched.json()["price_minor"], patched.json()["status"]) == (1500, "draft")
    deleted = client.delete("/v1/listings/l9", headers=h)
    assert deleted.status_code == 200
    assert client.get("/v1/listings/l9", headers=h).json()["status"] == "delisted"
    assert client.get("/v1/listings/l9/inventory", headers=h).json()["quantity"] == 4


def test_creating_an_existing_listing_is_a_conflict(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/listings", json={**NEW, "id": "l1"}, headers=auth(keys.operator))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_pages_follow_the_cursor_to_the_end(client: TestClient, keys: Keys) -> None:
    seen: list[str] = []
    url = "/v1/listings?limit=1"
    while True:
        page = client.get(url, headers=auth(keys.operator)).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/v1/listings?limit=1&cursor={page['next_cursor']}"
    assert seen == ["l1", "l2", "l3"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("seller_id=s1", ["l1", "l3"]),
        ("category=fashion/sh", ["l1", "l2", "l3"]),
        ("category=toys", []),
        ("status=draft", []),
        ("status=active&seller_id=s2", ["l2"]),
    ],
)
def test_listing_filters(client: TestClient, keys: Keys, query: str, expected: list[str]) -> None:
    response = client.get(f"/v1/listings?{query}", headers=auth(keys.service))
    assert [item["id"] for item in response.json()["items"]] == expected


def error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"price_minor": -1}, "price_minor", "greater than or equal to 0"),
        ({"currency": "XYZ"}, "currency", "unknown currency 'XYZ'"),
        ({"id": "bad id!"}, "id", "must be 1-64 characters"),
        ({"seller_id": ""}, "seller_id", "must be 1-64 characters"),
        ({"status": "gone"}, "status", "'active', 'draft', 'sold_out' or 'delisted'"),
        ({"title": ""}, "title", "at least 1 character"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_invalid_listing_fields_are_named_in_the_422(
    client: TestClient, keys: Keys, change: dict[str, Any], field: str, fragment: str
) -> None:
    body = error(client.post("/v1/listings", json={**NEW, **change}, headers=auth(keys.operator)))
    assert body["code"] == "validation_error"
    assert body["message"].startswith(f"{field}: ")
    assert fragment in body["message"]
    assert body["fields"][0]["field"] == field
    assert body["fields"][0]["location"] == "body"


def test_missing_fields_are_all_named(client: TestClient, keys: Keys) -> None:
    body = error(client.post("/v1/listings", json={"id": "l9"}, headers=auth(keys.operator)))
    named = {f["field"] for f in body["fields"]}
    assert {"seller_id", "title", "category_path", "price_minor", "currency"} <= named


def test_malformed_path_id_is_a_422_naming_the_parameter(client: TestClient, keys: Keys) -> None:
    body = error(client.get("/v1/listings/bad%20id", headers=auth(keys.operator)))
    assert body["message"].startswith("listing_id: String should match pattern")
    assert body["fields"][0]["location"] == "path"


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("cursor=%%%", "cursor"), ("seller_id=a%20b", "seller_id")],
)
def test_bad_query_parameters_are_named(client: TestClient, keys: Keys, query: str, field: str) -> None:
    body = error(client.get(f"/v1/listings?{query}", headers=auth(keys.operator)))
    assert body["message"].startswith(f"{field}: ")


def test_patch_that_changes_nothing_is_refused(client: TestClient, keys: Keys) -> None:
    body = error(client.patch("/v1/listings/l1", json={}, headers=auth(keys.operator)))
    assert "changes nothing" in body["message"]
