"""Listings: created and edited by their seller (or the operator), read by every role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from marketpilot.api.deps import PageDep, RuntimeDep, blocking, id_path, id_query, page_out
from marketpilot.api.security import Reader, SellerWriter
from marketpilot.domain.entities import Listing, ListingIn, ListingPatch, ListingStatus
from marketpilot.marketplace.page import Page

router = APIRouter(prefix="/v1/listings", tags=["listings"])
ListingId = Annotated[str, id_path("Listing id.")]


@router.post("", status_code=201)
async def create_listing(body: ListingIn, rt: RuntimeDep, who: SellerWriter) -> Listing:
    return await blocking(rt.listings.create, body, scope=who.scope)


@router.get("")
async def list_listings(
    rt: RuntimeDep,
    who: Reader,
    page: PageDep,
    seller_id: Annotated[str | None, id_query("Only this seller's listings.")] = None,
    category: Annotated[
        str | None,
        Query(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f]+$", description="Category path prefix."),
    ] = None,
    status: ListingStatus | None = None,
) -> Page[Listing]:
    return page_out(
        await blocking(
            rt.listings.list,
            limit=page.limit,
            cursor=page.cursor,
            scope=who.scope,
            seller_id=seller_id,
            category=category,
            status=status,
        )
    )


@router.get("/{listing_id}")
async def get_listing(listing_id: ListingId, rt: RuntimeDep, who: Reader) -> Listing:
    return await blocking(rt.listings.get, listing_id, scope=who.scope)


@router.patch("/{listing_id}")
async def update_listing(listing_id: ListingId, body: ListingPatch, rt: RuntimeDep, who: SellerWriter) -> Listing:
    return await blocking(rt.listings.update, listing_id, body, scope=who.scope)


@router.delete("/{listing_id}")
async def delist_listing(listing_id: ListingId, rt: RuntimeDep, who: SellerWriter) -> Listing:
    """Delisting is a soft delete: orders keep pointing at the listing, buyers stop seeing it."""
    delist = ListingPatch(status=ListingStatus.DELISTED)
    return await blocking(rt.listings.update, listing_id, delist, scope=who.scope)
