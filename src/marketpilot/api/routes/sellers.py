"""Sellers: created by the operator; a merchant sees only its own, and manages its own
webhook endpoint (order notifications, signed; see `marketpilot.workflows.webhooks`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from marketpilot.api.deps import PageDep, RuntimeDep, blocking, id_path, page_out
from marketpilot.api.security import Operator, Reader, SellerWriter
from marketpilot.domain.entities import Seller, SellerIn
from marketpilot.marketplace.page import Page
from marketpilot.workflows.webhooks import WebhookDeliveryView, WebhookEndpoint, WebhookIn

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


@router.put("/{seller_id}/webhook")
async def register_webhook(seller_id: SellerId, body: WebhookIn, rt: RuntimeDep, who: SellerWriter) -> WebhookEndpoint:
    """Set the seller's webhook URL and issue a new signing secret (shown once: keep it)."""
    return await blocking(rt.webhooks.register, seller_id, body, scope=who.scope)


@router.get("/{seller_id}/webhook")
async def get_webhook(seller_id: SellerId, rt: RuntimeDep, who: SellerWriter) -> WebhookEndpoint:
    return await blocking(rt.webhooks.get, seller_id, scope=who.scope)


@router.delete("/{seller_id}/webhook", status_code=204)
async def delete_webhook(seller_id: SellerId, rt: RuntimeDep, who: SellerWriter) -> Response:
    await blocking(rt.webhooks.delete, seller_id, scope=who.scope)
    return Response(status_code=204)


@router.get("/{seller_id}/webhook/deliveries")
async def list_webhook_deliveries(
    seller_id: SellerId, rt: RuntimeDep, who: SellerWriter,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query(description="Only this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WebhookDeliveryView]:
    """The seller's latest webhook deliveries, newest first."""
    return await blocking(rt.webhooks.deliveries, seller_id, scope=who.scope, status=status, limit=limit)
