from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.platform.config import load_settings
from marketpilot.runtime import Runtime


def test_healthz_and_readyz_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_readyz_is_503_until_migrations_reach_head(tmp_path: Path) -> None:
    rt = Runtime(load_settings(home=tmp_path), migrate=False)
    try:
        client = TestClient(create_app(rt))
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_ready"
        assert "no revision" in response.json()["error"]["message"]
        rt.db.migrate()
        assert client.get("/readyz").status_code == 200
    finally:
        rt.close()


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    rt = Runtime(load_settings(home=tmp_path, database_url=url), migrate=False)
    try:
        response = TestClient(create_app(rt)).get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["message"] == "database unreachable (OperationalError)"
        assert TestClient(create_app(rt)).get("/healthz").status_code == 200
    finally:
        rt.close()
