"""Buyers: synced by the storefront; not visible to merchants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from marketpilot.api.deps import PageDep, RuntimeDep, blocking, id_path, page_out
from marketpilot.api.security import Machine
from marketpilot.domain.entities import User, UserIn
from marketpilot.marketplace.page import Page

router = APIRouter(prefix="/v1/users", tags=["users"])
UserId = Annotated[str, id_path("User id.")]


@router.post("", status_code=201)
async def create_user(body: UserIn, rt: RuntimeDep, _who: Machine) -> User:
    return await blocking(rt.users.create, body)


@router.get("")
async def list_users(
    rt: RuntimeDep,
    _who: Machine,
    page: PageDep,
    region: Annotated[str | None, Query(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f]+$")] = None,
) -> Page[User]:
    return page_out(await blocking(rt.users.list, limit=page.limit, cursor=page.cursor, region=region))


@router.get("/{user_id}")
async def get_user(user_id: UserId, rt: RuntimeDep, _who: Machine) -> User:
    return await blocking(rt.users.get, user_id)
