from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.platform.config import get_settings


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MARKETPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MARKETPILOT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("MARKETPILOT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_without_a_runtime_the_app_builds_a_migrated_one_from_settings(settings_env: Path) -> None:
    app = create_app()
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"status": "ok"}
        assert client.get("/v1/sellers").status_code == 401
    assert (settings_env / "marketpilot.db").exists()
