"""Liveness and readiness for load balancers and orchestrators (no key needed)."""

from __future__ import annotations

from functools import cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from marketpilot.api.deps import RuntimeDep
from marketpilot.api.errors import ErrorResponse, error_response
from marketpilot.platform.db import Database
from marketpilot.platform.db.migrate import alembic_config

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@cache
def migration_heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def readiness_problem(db: Database, heads: set[str]) -> str | None:
    """Why the process cannot serve yet, or None when the database is reachable and migrated."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:
        return f"database unreachable ({type(exc).__name__})"
    if current != heads:
        return f"database schema at {sorted(current) or 'no revision'}, code expects {sorted(heads)}"
    return None


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up and serving. Does not touch the database."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": ErrorResponse, "description": "Not ready."}})
def readyz(rt: RuntimeDep) -> Health | Response:
    """The database is reachable and its schema is at the migration head."""
    problem = readiness_problem(rt.db, migration_heads())
    if problem is not None:
        return error_response(503, "not_ready", problem)
    return Health(status="ok")
