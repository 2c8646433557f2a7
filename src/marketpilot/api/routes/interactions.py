"""Batch ingest of buyer interactions (views, clicks, carts, purchases, ratings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from marketpilot.api.deps import RuntimeDep, blocking
from marketpilot.api.security import Machine
from marketpilot.domain.entities import InteractionIn

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])
MAX_BATCH = 10_000


class InteractionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[InteractionIn], Field(min_length=1, max_length=MAX_BATCH)]


class IngestResult(BaseModel):
    accepted: int = Field(description="Interactions stored and announced now.")
    duplicates: int = Field(description="Interactions already stored (or repeated in the batch); ignored.")


@router.post("/batch")
async def ingest_interactions(body: InteractionBatch, rt: RuntimeDep, _who: Machine) -> IngestResult:
    """Idempotent: re-sending a batch stores each interaction once."""
    accepted, duplicates = await blocking(rt.interactions.ingest, body.items)
    return IngestResult(accepted=accepted, duplicates=duplicates)
