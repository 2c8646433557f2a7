"""Sellers: created by the operator; a merchant sees only its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from marketpilot.api.deps import PageDep, RuntimeDep, blocking, id_path, page_out
from marketpilot.api.security import Operator, Reader
from marketpilot.domain.entities import Seller, SellerIn
from marketpilot.marketplace.page import Page

router = APIRouter(prefix="/v1/sellers", tags=["sellers"])
SellerId = Annotated[str, id_path("Seller id.")]


@router.post("", status_code=201)
async def create_seller(body: SellerIn, rt: RuntimeDep, _who: Operator) -> Seller:
    return await blocking(rt.sellers.create, body)


@router.get("")
async def list_sellers(rt: RuntimeDep, who: Reader, page: PageDep) -> Page[Seller]:
    return page_out(await blocking(rt.sellers.list, limit=page.limit, cursor=page.cursor, scope=who.scope))


@router.get("/{seller_id}")
async def get_seller(seller_id: SellerId, rt: RuntimeDep, who: Reader) -> Seller:
    return await blocking(rt.sellers.get, seller_id, scope=who.scope)
