from __future__ import annotations

from pathlib import Path

from api_seed import Keys, auth, build_runtime
from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.platform.auth import Authenticator, revoke_key
from marketpilot.platform.db import Database
from marketpilot.runtime import Runtime


def test_operator_issues_a_merchant_key_that_works_at_once(client: TestClient, keys: Keys) -> None:
    created = client.post("/v1/keys", json={"role": "merchant", "seller_id": "s2", "name": "shop two"},
                          headers=auth(keys.operator))
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith(f"mp_{new['id']}_") and new["seller_id"] == "s2"
    assert client.get("/v1/listings/l2", headers=auth(new["key"])).status_code == 200
    assert client.get("/v1/listings/l1", headers=auth(new["key"])).status_code == 404
    listed = client.get("/v1/keys", headers=auth(keys.operator)).json()["items"]
    assert new["id"] in {k["id"] for k in listed}
    assert all("key" not in k and "key_hash" not in k for k in listed)


def test_a_merchant_key_needs_a_seller(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/keys", json={"role": "merchant"}, headers=auth(keys.operator))
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "a merchant key needs the seller id it acts for"


def test_revoking_through_the_api_takes_effect_immediately(client: TestClient, keys: Keys) -> None:
    new = client.post("/v1/keys", json={"role": "service"}, headers=auth(keys.operator)).json()
    assert client.get("/v1/listings/l1", headers=auth(new["key"])).status_code == 200  # now cached
    revoked = client.delete(f"/v1/keys/{new['id']}", headers=auth(keys.operator))
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/v1/listings/l1", headers=auth(new["key"])).status_code == 401
    assert new["id"] not in {k["id"] for k in client.get("/v1/keys", headers=auth(keys.operator)).json()["items"]}
    everything = client.get("/v1/keys?include_revoked=true", headers=auth(keys.operator)).json()["items"]
    assert new["id"] in {k["id"] for k in everything}


def test_a_key_revoked_elsewhere_stops_working_once_the_cache_entry_expires(
    client: TestClient, keys: Keys, runtime: Runtime
) -> None:
    now = [0.0]
    client.app.state.authenticator = Authenticator(runtime.db, ttl=30, clock=lambda: now[0])  # type: ignore[attr-defined]
    h = auth(keys.service)
    assert client.get("/v1/listings/l1", headers=h).status_code == 200
    revoke_key(runtime.db, keys.service.split("_")[1])  # e.g. the CLI, or another replica
    now[0] = 29.0
    assert client.get("/v1/listings/l1", headers=h).status_code == 200  # still cached: within the TTL
    now[0] = 31.0
    assert client.get("/v1/listings/l1", headers=h).status_code == 401


def test_auth_is_disabled_only_when_explicitly_configured(db: Database, tmp_path: Path) -> None:
    default = build_runtime(db, tmp_path / "a")
    disabled = build_runtime(db, tmp_path / "b", auth_required=False)
    try:
        assert TestClient(create_app(default)).get("/v1/sellers").status_code == 401
        assert TestClient(create_app(disabled)).get("/v1/sellers").status_code == 200
    finally:
        default.close()
        disabled.close()
