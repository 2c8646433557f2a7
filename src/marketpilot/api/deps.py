"""Shared request parameters: the runtime, entity ids in paths and queries, pagination."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from marketpilot.domain.entities import ID_PATTERN
from marketpilot.domain.errors import InvalidInput
from marketpilot.marketplace.page import Page
from marketpilot.runtime import Runtime

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_PAGE_SIZE = 50


async def blocking(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a synchronous (database) call on a worker thread; the event loop stays free.

    Routes are `async def` and make exactly one such call: a plain `def` route would cost
    two thread hops (FastAPI also validates a sync route's response on a worker thread).
    """
    return await run_in_threadpool(fn, *args, **kwargs)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def id_path(description: str) -> object:
    """Path parameter holding an entity id (validated, and documented with its pattern)."""
    return Path(description=description, pattern=ID_PATTERN.pattern, min_length=1, max_length=64)


def id_query(description: str) -> object:
    return Query(description=description, pattern=ID_PATTERN.pattern, min_length=1, max_length=64)


def encode_cursor(last_id: str | None) -> str | None:
    """Cursors are opaque to clients, so the ordering behind them may change later."""
    if last_id is None:
        return None
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        last_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last_id = ""
    if not ID_PATTERN.match(last_id):
        raise InvalidInput("cursor: malformed; pass back the `next_cursor` of the previous page unchanged")
    return last_id


@dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int
    cursor: str | None


async def page_query(
    request: Request,
    limit: Annotated[int, Query(ge=1, description="Items per page (at most `page_size_max`).")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> PageQuery:
    maximum = request.app.state.runtime.settings.page_size_max
    if limit > maximum:
        raise InvalidInput(f"limit: must be at most {maximum}")
    return PageQuery(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageQuery, Depends(page_query)]


def page_out(page: Page[T]) -> Page[T]:
    return page.model_copy(update={"next_cursor": encode_cursor(page.next_cursor)})
