"""Stock levels (seller-scoped) and checkout locks (taken by the storefront)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from marketpilot.api.deps import RuntimeDep, blocking, id_path
from marketpilot.api.security import Machine, Reader, SellerWriter
from marketpilot.domain.entities import CheckoutLock, CheckoutLockIn, InventoryLevel, InventorySet

router = APIRouter(tags=["inventory"])
ListingId = Annotated[str, id_path("Listing id.")]
LockId = Annotated[str, id_path("Checkout lock id.")]


@router.get("/v1/listings/{listing_id}/inventory")
async def get_inventory(listing_id: ListingId, rt: RuntimeDep, who: Reader) -> InventoryLevel:
    return await blocking(rt.inventory.get, listing_id, scope=who.scope)


@router.put("/v1/listings/{listing_id}/inventory")
async def set_inventory(listing_id: ListingId, body: InventorySet, rt: RuntimeDep, who: SellerWriter) -> InventoryLevel:
    return await blocking(rt.inventory.set_quantity, listing_id, body.quantity, scope=who.scope)


@router.post("/v1/listings/{listing_id}/inventory/locks", status_code=201)
async def lock_inventory(listing_id: ListingId, body: CheckoutLockIn, rt: RuntimeDep, _who: Machine) -> CheckoutLock:
    """Hold units for a checkout until the lock is committed, released or expires."""
    return await blocking(rt.inventory.lock, listing_id, body)


@router.post("/v1/inventory/locks/{lock_id}/release")
async def release_lock(lock_id: LockId, rt: RuntimeDep, _who: Machine) -> InventoryLevel:
    return await blocking(rt.inventory.release, lock_id)


@router.post("/v1/inventory/locks/{lock_id}/commit")
async def commit_lock(lock_id: LockId, rt: RuntimeDep, _who: Machine) -> InventoryLevel:
    return await blocking(rt.inventory.commit, lock_id)
