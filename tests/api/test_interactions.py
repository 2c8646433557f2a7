from __future__ import annotations

from typing import Any

from api_seed import Keys, auth
from fastapi.testclient import TestClient

from marketpilot.api.routes.interactions import MAX_BATCH


def interaction(i: int, **change: Any) -> dict[str, Any]:
    return {"user_id": "u1", "listing_id": f"l{i}", "event": "view", "timestamp": f"2024-05-01T10:00:{i % 60:02d}Z",
            **change}


def test_batch_ingest_counts_accepted_and_duplicates(client: TestClient, keys: Keys) -> None:
    h = auth(keys.service)
    batch = {"items": [interaction(i) for i in range(5)] + [interaction(0)]}
    assert client.post("/v1/interactions/batch", json=batch, headers=h).json() == {"accepted": 5, "duplicates": 1}
    assert client.post("/v1/interactions/batch", json=batch, headers=h).json() == {"accepted": 0, "duplicates": 6}


def test_timestamps_may_be_unix_seconds(client: TestClient, keys: Keys) -> None:
    batch = {"items": [interaction(1, timestamp=1714557600, event="rating", value=4.5)]}
    assert client.post("/v1/interactions/batch", json=batch, headers=auth(keys.service)).json()["accepted"] == 1


def test_bad_item_is_named_by_its_position(client: TestClient, keys: Keys) -> None:
    batch = {"items": [interaction(1), interaction(2, event="stare")]}
    response = client.post("/v1/interactions/batch", json=batch, headers=auth(keys.service))
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("items.1.event: Input should be 'view'")


def test_empty_and_oversized_batches_are_refused(client: TestClient, keys: Keys) -> None:
    h = auth(keys.service)
    empty = client.post("/v1/interactions/batch", json={"items": []}, headers=h)
    assert empty.status_code == 422
    assert empty.json()["error"]["message"].startswith("items: List should have at least 1 item")
    big = client.post("/v1/interactions/batch", json={"items": [interaction(1)] * (MAX_BATCH + 1)}, headers=h)
    assert big.status_code == 422
    assert f"at most {MAX_BATCH} items" in big.json()["error"]["message"]
