"""Where the model registry keeps its state, per profile, and how an MLflow client is opened.

- Embedded: MLflow's tables in `HOME/mlflow.db` (SQLite), model files in `HOME/mlartifacts`.
- PostgreSQL (the distributed profile): MLflow's tables in a schema `mlflow` of the
  application database. A separate schema, not the app's `public`, because MLflow and
  marketpilot both keep an Alembic `alembic_version` table; a schema rather than a separate
  database because it needs no extra provisioning (the app's role can create a schema in
  its own database) and is backed up with the rest of the state. Model files go to
  `MARKETPILOT_MODEL_ARTIFACT_ROOT`, which must be storage every replica shares.

Opening a fresh store runs MLflow's schema migrations (a few seconds, once per store; a
fresh SQLite store is built on tmpfs and moved into place, see `_create_sqlite_store`). N
replicas starting together against a fresh store would race on them, so opening holds a
lock: a PostgreSQL advisory lock, or an `flock` next to the SQLite file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from marketpilot.platform.config import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MLFLOW_SCHEMA = "mlflow"
_TMPFS = "/dev/shm"
_ADVISORY_LOCK_KEY = 0x6D70_6D6C_666C_6F77  # "mpmlflow", fits a signed bigint: serialises set-up


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """An MLflow backend-store URI (tracking and registry) and the root URI for model files."""

    tracking_uri: str
    artifact_root: str

    @property
    def is_postgresql(self) -> bool:
        return self.tracking_uri.startswith("postgresql")

    @property
    def is_sqlite(self) -> bool:
        return self.tracking_uri.startswith("sqlite")


def store_location(settings: Settings) -> StoreLocation:
    """Derive the registry's location from the application settings (see module docstring)."""
    if settings.db_url.startswith("postgresql"):
        tracking_uri = _with_search_path(settings.db_url, MLFLOW_SCHEMA)
    else:
        tracking_uri = f"sqlite:///{(settings.home / 'mlflow.db').resolve()}"
    root = settings.model_artifact_root or str(settings.home / "mlartifacts")
    return StoreLocation(tracking_uri=tracking_uri, artifact_root=as_uri(root))


def as_uri(location: str) -> str:
    """A URI for `location`: kept as is when it has a scheme, else an absolute `file://` URI."""
    if "://" in location:
        return location.rstrip("/")
    return Path(location).expanduser().resolve().as_uri()


def open_client(location: StoreLocation) -> MlflowClient:
    """An MLflow client bound to `location` only, with its tables created and migrated.

    The client gets explicit tracking and registry URIs and never touches MLflow's global
    state (`mlflow.set_tracking_uri`), so several registries can live in one process.
    """
    _disable_telemetry()
    from mlflow.tracking import MlflowClient

    with _setup_lock(location):
        if location.is_sqlite:
            _create_sqlite_store(_sqlite_path(location))
        client = MlflowClient(tracking_uri=location.tracking_uri, registry_uri=location.tracking_uri)
        # Both stores initialise (and on a fresh database migrate) on first use; do it
        # under the lock, and now rather than in the middle of the first request.
        client.search_registered_models(max_results=1)
    return client


def close_client(client: MlflowClient) -> None:
    """Release the client's database connections. MLflow caches one engine per URI for the
    whole process; a disposed engine reconnects if the URI is opened again."""
    stores = [getattr(getattr(client, "_tracking_client", None), "store", None)]
    stores.append(getattr(getattr(client, "_registry_client_lazy", None), "store", None))
    for store in stores:
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


def _create_sqlite_store(database: Path) -> None:
    """Create a missing SQLite store on tmpfs, then move it into place.

    MLflow's migrations commit ~60 times, and each commit fsyncs: on a busy disk that is
    most of the set-up time (measured 13 s on disk against 5 s on tmpfs, on 2 busy cores).
    Migrating where fsync is free and publishing the finished file with an atomic rename is
    as safe (a crash leaves no half-migrated store behind) and much faster. Without a
    usable tmpfs MLflow migrates in place as usual.
    """
    if database.exists() or not os.access(_TMPFS, os.W_OK):
        return
    from mlflow.tracking import MlflowClient

    scratch = Path(_TMPFS) / f"marketpilot-mlflow-{uuid.uuid4().hex}.db"
    staged = database.with_name(f".{database.name}.{uuid.uuid4().hex}")
    try:
        uri = f"sqlite:///{scratch}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_registered_models(max_results=1)
        close_client(client)
        shutil.copyfile(scratch, staged)
        with staged.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(staged, database)
    finally:
        for path in (scratch, staged):
            path.unlink(missing_ok=True)


def _sqlite_path(location: StoreLocation) -> Path:
    return Path(location.tracking_uri.split("///", 1)[1])


def _disable_telemetry() -> None:
    """MLflow 3 phones home with usage telemetry unless told not to, decided when `mlflow` is
    first imported. An operator's registry should not; an explicit setting still wins."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _with_search_path(url: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    option = f"-csearch_path={schema}"
    existing = parsed.query.get("options")
    if isinstance(existing, str) and existing:
        option = f"{existing} {option}"
    return parsed.update_query_dict({"options": option}).render_as_string(hide_password=False)


@contextmanager
def _setup_lock(location: StoreLocation) -> Iterator[None]:
    if location.is_postgresql:
        with _postgres_setup_lock(location.tracking_uri):
            yield
    elif location.is_sqlite:
        database = _sqlite_path(location)
        database.parent.mkdir(parents=True, exist_ok=True)
        with (database.parent / f"{database.name}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:  # a remote MLflow server migrates its own store
        yield


@contextmanager
def _postgres_setup_lock(url: str) -> Iterator[None]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                # Look first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when
                # the schema exists, and a locked-down role may only have been given the schema.
                exists = conn.execute(sa.text("SELECT to_regnamespace(:name) IS NOT NULL"), {"name": MLFLOW_SCHEMA})
                if not exists.scalar_one():
                    conn.execute(sa.text('CREATE SCHEMA IF NOT EXISTS "mlflow"'))  # = MLFLOW_SCHEMA
                conn.commit()
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()
