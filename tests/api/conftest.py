"""An app on the `db` fixture (SQLite and PostgreSQL), seeded (see `api_seed`), and a key per role."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from api_seed import Keys, build_runtime, seed  # noqa: E402

from marketpilot.api import create_app  # noqa: E402
from marketpilot.platform.auth import Role, create_key  # noqa: E402
from marketpilot.platform.db import Database  # noqa: E402
from marketpilot.runtime import Runtime  # noqa: E402


@pytest.fixture
def runtime(db: Database, tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(db, tmp_path / "home")
    seed(rt)
    yield rt
    rt.close()


@pytest.fixture
def keys(runtime: Runtime) -> Keys:
    return Keys(
        operator=create_key(runtime.db, Role.OPERATOR, name="ops")[1],
        merchant=create_key(runtime.db, Role.MERCHANT, seller_id="s1", name="shop one")[1],
        service=create_key(runtime.db, Role.SERVICE, name="storefront")[1],
    )


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
