"""Every error leaves the API as ``{"error": {"code", "message", ...}}`` with its status.

Domain errors carry their own `code` and `status`; framework errors (unknown route, wrong
method, malformed body, oversized body) are mapped here; a validation error's message names
each offending field. Unexpected exceptions are turned into a bare 500 by the request-context
middleware, which logs them with the request id; nothing internal reaches the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from marketpilot.domain.errors import DomainError
from marketpilot.platform.auth import Unauthenticated
from marketpilot.platform.monitoring.logging import request_id

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}


class FieldError(BaseModel):
    field: str
    location: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    fields: list[FieldError] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


# Documented on every /v1 operation (see routes/__init__.py).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, unknown or revoked API key."},
    403: {"model": ErrorResponse, "description": "The key's role may not call this route."},
    413: {"model": ErrorResponse, "description": "Request body larger than `max_request_bytes`."},
    422: {"model": ErrorResponse, "description": "Invalid input; the message names each field."},
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id.get()}
    if fields:
        body["fields"] = [f.model_dump() for f in fields]
    return Response(
        json.dumps({"error": body}, ensure_ascii=False, default=str).encode(),
        status_code=status,
        media_type="application/json",
        headers=dict(headers) if headers else None,
    )


def _field(loc: Sequence[int | str]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    path = ".".join(str(p) for p in loc[1:])
    return (path or where), where


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    out = []
    for err in errors:
        loc = err.get("loc", ())
        if err.get("type") == "json_invalid":
            reason = err.get("ctx", {}).get("error", "cannot be parsed")
            where = loc[1] if len(loc) > 1 else "?"
            out.append(FieldError(field="body", location="body", message=f"malformed JSON at {where}: {reason}"))
            continue
        name, location = _field(loc)
        out.append(FieldError(field=name, location=location, message=str(err.get("msg", "invalid")).removeprefix("Value error, ")))
    return out


async def on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = field_errors(exc.errors())
    shown = "; ".join(f"{f.field}: {f.message}" for f in fields[:10])
    if len(fields) > 10:
        shown += f"; and {len(fields) - 10} more"
    return error_response(422, "validation_error", shown or "invalid request", fields=fields)


async def on_domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return error_response(exc.status, exc.code, exc.message, headers=headers)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route matches {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def on_data_error(_request: Request, exc: Exception) -> Response:
    """The database refused a value that passed validation (e.g. PostgreSQL cannot store NUL
    characters in text). It is the caller's input, so a 422; the driver's text stays in the log."""
    log.info("database refused a value: %s", exc)
    return error_response(
        422, "invalid_input", "a value cannot be stored: text may not contain NUL characters, numbers must be in range"
    )


async def on_integrity_error(_request: Request, exc: Exception) -> Response:
    """A uniqueness or reference check lost a race with a concurrent write."""
    log.info("integrity error: %s", exc)
    return error_response(409, "conflict", "the request conflicts with the current state; retry or re-read first")


def internal_error() -> Response:
    return error_response(500, "internal_error", "internal server error; quote the request id when reporting it")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(IntegrityError, on_integrity_error)
