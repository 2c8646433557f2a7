"""Per-request context, as one pure ASGI middleware: request id, metrics, access log, 500s.

Pure ASGI (not `BaseHTTPMiddleware`) so a request pays a few function calls, not an extra
task and memory stream. It is the outermost of our middleware: it sees the final status of
every response, and it is where an unexpected exception becomes a logged, opaque 500.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketpilot.api.errors import internal_error
from marketpilot.platform.monitoring.logging import request_id
from marketpilot.platform.monitoring.metrics import UNMATCHED_ROUTE, HttpMetrics

HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")

access_log = logging.getLogger("marketpilot.access")
error_log = logging.getLogger("marketpilot.api")


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _VALID_ID.match(value) else None
    return None


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/listings/{listing_id}`), never the raw path,
    so metric labels stay bounded whatever URLs clients send."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        header = (HEADER, rid.encode("ascii"))
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception(
                "unhandled error on %s %s", scope["method"], scope["path"], extra={"request_id": rid}
            )
            if started:
                raise
            await internal_error()(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            self.metrics.observe(scope["method"], route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    scope["method"],
                    route,
                    status,
                    extra={
                        "request_id": rid,
                        "method": scope["method"],
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )
            request_id.reset(token)
