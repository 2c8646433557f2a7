"""Refuse request bodies larger than `max_request_bytes`, declared or streamed.

A declared `Content-Length` over the limit is refused before the app runs and before a byte
of the body is read. A body without one (chunked) is counted as it is received; the read
that crosses the limit raises a 413 `HTTPException`, which FastAPI re-raises from its body
parsing, and which this middleware answers itself if the app does not.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketpilot.api.errors import error_response


class RequestTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        length = declared_length(scope)
        if length is not None:
            if length > limit:
                too_large = RequestTooLarge(limit)
                await error_response(413, "request_too_large", too_large.detail, headers={"Connection": "close"})(
                    scope, receive, send
                )
                return
            # The server enforces a declared length; no need to count.
            await self.app(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLarge as exc:
            if started:
                raise
            await error_response(413, "request_too_large", exc.detail, headers={"Connection": "close"})(
                scope, receive, send
            )
