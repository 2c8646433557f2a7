"""Orders: placed by the storefront, read by their seller and the storefront."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from marketpilot.api.deps import PageDep, RuntimeDep, blocking, id_path, id_query, page_out
from marketpilot.api.security import Machine, Reader
from marketpilot.domain.entities import Order, OrderIn, OrderStatus
from marketpilot.marketplace.page import Page

router = APIRouter(prefix="/v1/orders", tags=["orders"])
OrderId = Annotated[str, id_path("Order id.")]


@router.post("", status_code=201)
async def place_order(body: OrderIn, rt: RuntimeDep, _who: Machine) -> Order:
    return await blocking(rt.orders.place, body)


@router.get("")
async def list_orders(
    rt: RuntimeDep,
    who: Reader,
    page: PageDep,
    user_id: Annotated[str | None, id_query("Only this buyer's orders.")] = None,
    status: OrderStatus | None = None,
) -> Page[Order]:
    return page_out(
        await blocking(
            rt.orders.list, limit=page.limit, cursor=page.cursor, scope=who.scope, user_id=user_id, status=status
        )
    )


@router.get("/{order_id}")
async def get_order(order_id: OrderId, rt: RuntimeDep, who: Reader) -> Order:
    return await blocking(rt.orders.get, order_id, scope=who.scope)
