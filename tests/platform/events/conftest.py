"""Fixtures for event delivery: databases with the effects table, and a delivery backend per
contract run.

PostgreSQL databases are created once per module and emptied between tests, and the schema
is built with `create_all` rather than the migrations (tested elsewhere): on two shared cores
that keeps this folder within its time budget.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from events_harness import Delivery, DistributedDelivery, EmbeddedDelivery, fresh_database  # noqa: E402

from marketpilot.platform.db import Database  # noqa: E402
from support.services import postgres_database  # noqa: E402


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    database = fresh_database(pg_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_events_db(tmp_path: Path) -> Iterator[Database]:
    database = fresh_database(f"sqlite:///{tmp_path / 'events.db'}")
    yield database
    database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def events_db(request: pytest.FixtureRequest) -> Database:
    """An empty database with the effects table, on SQLite and on PostgreSQL."""
    name = "sqlite_events_db" if request.param == "sqlite" else "pg_db"
    database: Database = request.getfixturevalue(name)
    return database


@pytest.fixture(params=["embedded-sqlite", "embedded-postgresql", "distributed"])
def delivery(request: pytest.FixtureRequest) -> Iterator[Delivery]:
    """The same contract, three ways: dispatcher on SQLite, dispatcher on PostgreSQL, and
    outbox on PostgreSQL -> relay -> Tansu -> consumer groups."""
    backend: Delivery
    if request.param == "embedded-sqlite":
        backend = EmbeddedDelivery(request.getfixturevalue("sqlite_events_db"))
    elif request.param == "embedded-postgresql":
        backend = EmbeddedDelivery(request.getfixturevalue("pg_db"))
    else:
        backend = DistributedDelivery(request.getfixturevalue("pg_db"), request.getfixturevalue("kafka_bootstrap"))
    yield backend
    backend.close()
