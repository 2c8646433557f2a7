"""Prometheus scrape endpoint, for operator and service keys (scrapers send a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from marketpilot.api.security import Machine
from marketpilot.platform.monitoring import Metrics

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, _who: Machine) -> Response:
    registry: Metrics = request.app.state.metrics
    # Rendering reads the outbox tables: keep that off the event loop.
    body = await run_in_threadpool(registry.render)
    return Response(body, media_type=registry.content_type)
