"""Where the registry lives per profile, and that it keeps out of the application's tables."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from marketpilot.platform.config import Settings, load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.models.artifacts import ArrayBundle
from marketpilot.platform.models.errors import ModelNotFound
from marketpilot.platform.models.registry import ModelRegistry
from marketpilot.platform.models.store import as_uri, store_location


def test_the_embedded_store_is_sqlite_and_files_under_home(tmp_path: Path) -> None:
    location = store_location(load_settings(home=tmp_path / "home"))
    assert location.tracking_uri == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert location.artifact_root == (tmp_path / "home" / "mlartifacts").as_uri()


def test_a_postgresql_database_gets_an_mlflow_schema_of_its_own(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, database_url="postgresql+psycopg://mp:secret@db:5432/marketpilot")
    location = store_location(settings)
    assert location.tracking_uri == (
        "postgresql+psycopg://mp:secret@db:5432/marketpilot?options=-csearch_path%3Dmlflow"
    )
    assert location.is_postgresql


def test_the_artifact_root_setting_places_model_files(tmp_path: Path) -> None:
    shared = load_settings(home=tmp_path, model_artifact_root=str(tmp_path / "shared"))
    assert store_location(shared).artifact_root == (tmp_path / "shared").as_uri()
    bucket = load_settings(home=tmp_path, model_artifact_root="s3://models/marketpilot/")
    assert store_location(bucket).artifact_root == "s3://models/marketpilot"
    assert as_uri("relative/dir") == (Path.cwd() / "relative" / "dir").as_uri()


def test_mlflow_tables_live_in_their_schema_beside_the_application_tables(
    pg_registry: ModelRegistry, pg_settings: Settings
) -> None:
    app = Database(pg_settings.db_url)
    try:
        app.migrate()  # the application's own Alembic history, in `public`
        with app.engine.connect() as conn:
            tables = set(conn.execute(sa.text(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
                " WHERE table_schema IN ('public', 'mlflow')"
            )).scalars())
    finally:
        app.dispose()
    assert {"mlflow.registered_models", "mlflow.alembic_version", "public.alembic_version"} <= tables
    assert not any(t.startswith("public.") and t.endswith("registered_models") for t in tables)


def test_reopening_an_existing_store_sees_what_was_registered(
    sqlite_registry: ModelRegistry, sqlite_settings: Settings
) -> None:
    with ModelRegistry.from_settings(sqlite_settings) as again:
        assert [m.name for m in again.list_models()] == [m.name for m in sqlite_registry.list_models()]


def test_registries_on_different_stores_live_side_by_side_without_global_state(
    sqlite_registry: ModelRegistry, pg_registry: ModelRegistry
) -> None:
    import mlflow

    name = f"side-by-side-{uuid.uuid4().hex[:8]}"
    sqlite_registry.log_training_run(
        name, model=ArrayBundle({"a": np.ones(1)}), params={}, metrics={}, data_fingerprint="6" * 64
    )
    assert [v.version for v in sqlite_registry.versions(name)] == [1]
    with pytest.raises(ModelNotFound):
        pg_registry.versions(name)
    assert not mlflow.is_tracking_uri_set()
