"""The HTTP application: routers, error handlers, middleware, and the objects they share."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from marketpilot.api import errors
from marketpilot.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from marketpilot.api.routes import OPEN, V1
from marketpilot.platform.auth import Authenticator
from marketpilot.platform.config import Settings
from marketpilot.platform.models.serving import ModelServer
from marketpilot.platform.models.serving_startup import start_serving
from marketpilot.platform.monitoring import Metrics
from marketpilot.runtime import Runtime

log = logging.getLogger(__name__)

DESCRIPTION = """\
The marketplace API of marketpilot. Every `/v1` route needs an API key sent as
`Authorization: Bearer <key>`; the key's role (`operator`, `merchant`, `service`) decides
which routes it may call, and a merchant key only ever sees its own seller's data.
Errors are `{"error": {"code": ..., "message": ...}}`. See docs/api.md.
"""


def auth_disabled(settings: Settings) -> bool:
    """Auth is off only when `auth_required = false` was set explicitly (env or file)."""
    return "auth_required" in settings.model_fields_set and not settings.auth_required


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """Build the API on `runtime` (built from settings, and closed on shutdown, if None)."""
    owned = runtime is None
    rt = runtime if runtime is not None else Runtime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        serving = start_serving(app, rt.settings) if rt.settings.served_models else None
        app.state.serving = serving
        try:
            yield
        finally:
            if serving is not None:
                serving.stop()
            app.state.model_server.close()
            if owned:
                rt.close()

    app = FastAPI(
        title="marketpilot",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.metrics = Metrics(rt.db, relay=rt.settings.is_distributed)
    app.state.model_server = ModelServer(metrics_registry=app.state.metrics.registry)
    if auth_disabled(rt.settings):
        log.warning("authentication is DISABLED (auth_required = false): every caller is an operator")
        app.state.authenticator = None
    else:
        app.state.authenticator = Authenticator(rt.db)

    for router in V1:
        app.include_router(router, responses=errors.COMMON_RESPONSES)
    for router in OPEN:
        app.include_router(router)
    errors.install(app)
    # Added last = outermost: the request context wraps the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=rt.settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics.http)
    return app
