"""Stock per listing, with checkout locks that hold units until they expire.

Reservation is one conditional UPDATE (`available >= wanted` checked by the database inside
the write), so concurrent checkouts can never reserve more than is in stock, on SQLite
(writers serialised by BEGIN IMMEDIATE) and PostgreSQL (row lock) alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from marketpilot.domain.entities import CheckoutLock, CheckoutLockIn, InventoryLevel
from marketpilot.domain.errors import Conflict, InsufficientStock, NotFound
from marketpilot.domain.events import InventoryChanged
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox


def level(row: t.Inventory) -> InventoryLevel:
    return InventoryLevel(
        listing_id=row.listing_id,
        quantity=row.quantity,
        reserved=row.reserved,
        available=row.quantity - row.reserved,
        updated_at=row.updated_at,
    )


def emit_changed(session: Session, row: t.Inventory, reason: str, source: str) -> None:
    outbox.append(
        session,
        InventoryChanged(
            listing_id=row.listing_id,
            quantity=row.quantity,
            reserved=row.reserved,
            available=row.quantity - row.reserved,
            reason=reason,
        ),
        source,
    )


class InventoryService:
    def __init__(self, db: Database, source: str) -> None:
        self.db = db
        self.source = source

    @contextmanager
    def _transaction(self, session: Session | None) -> Iterator[Session]:
        """The caller's transaction when it passes one (the change commits or rolls back with
        the caller's other writes, e.g. a workflow step's record), else a new one."""
        if session is not None:
            yield session
            return
        with self.db.session() as s:
            yield s

    def _row(self, s: Session, listing_id: str, scope: str | None) -> t.Inventory:
        q = select(t.Inventory).join(t.Listing).where(t.Inventory.listing_id == listing_id)
        if scope is not None:
            q = q.where(t.Listing.seller_id == scope)
        row = s.scalars(q).one_or_none()
        if row is None:
            raise NotFound(f"inventory for listing {listing_id!r} not found")
        return row

    def get(self, listing_id: str, *, scope: str | None = None) -> InventoryLevel:
        with self.db.read() as s:
            return level(self._row(s, listing_id, scope))

    def set_quantity(self, listing_id: str, quantity: int, *, scope: str | None = None) -> InventoryLevel:
        with self.db.session() as s:
            self._expire(s, listing_id, utcnow())
            row = self._row(s, listing_id, scope)
            if quantity < row.reserved:
                raise Conflict(
                    f"quantity {quantity} is below the {row.reserved} units held by checkout locks"
                )
            row.quantity = quantity
            row.version += 1
            s.flush()
            emit_changed(s, row, "set", self.source)
            return level(row)

    def lock(
        self, listing_id: str, request: CheckoutLockIn, *, now: datetime | None = None, session: Session | None = None
    ) -> CheckoutLock:
        """Hold `request.quantity` units until the lock expires; InsufficientStock if they
        are not available. With `session`, inside the caller's (write) transaction."""
        now = now or utcnow()
        with self._transaction(session) as s:
            self._expire(s, listing_id, now)
            res = s.execute(
                update(t.Inventory)
                .where(
                    t.Inventory.listing_id == listing_id,
                    t.Inventory.quantity - t.Inventory.reserved >= request.quantity,
                )
                .values(reserved=t.Inventory.reserved + request.quantity, version=t.Inventory.version + 1)
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                row = s.get(t.Inventory, listing_id)
                if row is None:
                    raise NotFound(f"inventory for listing {listing_id!r} not found")
                raise InsufficientStock(
                    f"listing {listing_id!r} has {row.quantity - row.reserved} units available, "
                    f"{request.quantity} requested"
                )
            lock = t.CheckoutLock(
                id=uuid.uuid4().hex,
                listing_id=listing_id,
                quantity=request.quantity,
                holder=request.holder,
                expires_at=now + timedelta(seconds=request.ttl_seconds),
            )
            s.add(lock)
            row = s.get(t.Inventory, listing_id, populate_existing=True)
            assert row is not None
            emit_changed(s, row, "locked", self.source)
            return CheckoutLock.model_validate(lock)

    def release(self, lock_id: str, *, session: Session | None = None) -> InventoryLevel:
        """Give the units of a lock back (checkout abandoned or failed)."""
        return self._finish(lock_id, sold=False, session=session)

    def commit(self, lock_id: str, *, session: Session | None = None) -> InventoryLevel:
        """Turn a lock into a sale: the units leave stock."""
        return self._finish(lock_id, sold=True, session=session)

    def _finish(self, lock_id: str, *, sold: bool, session: Session | None) -> InventoryLevel:
        with self._transaction(session) as s:
            lock = s.get(t.CheckoutLock, lock_id)
            if lock is None:
                raise NotFound(f"checkout lock {lock_id!r} not found (released, committed or expired)")
            values = {"reserved": t.Inventory.reserved - lock.quantity, "version": t.Inventory.version + 1}
            if sold:
                values["quantity"] = t.Inventory.quantity - lock.quantity
            s.execute(update(t.Inventory).where(t.Inventory.listing_id == lock.listing_id).values(**values))
            s.delete(lock)
            row = s.get(t.Inventory, lock.listing_id, populate_existing=True)
            assert row is not None
            emit_changed(s, row, "sold" if sold else "released", self.source)
            return level(row)

    def expire_locks(self, now: datetime | None = None) -> int:
        """Release every lock past its expiry; returns how many were released."""
        with self.db.session() as s:
            return self._expire(s, None, now or utcnow())

    def _expire(self, s: Session, listing_id: str | None, now: datetime) -> int:
        q = select(t.CheckoutLock).where(t.CheckoutLock.expires_at <= now)
        if listing_id is not None:
            q = q.where(t.CheckoutLock.listing_id == listing_id)
        stale = list(s.scalars(q))
        for lock in stale:
            s.execute(
                update(t.Inventory)
                .where(t.Inventory.listing_id == lock.listing_id)
                .values(reserved=t.Inventory.reserved - lock.quantity, version=t.Inventory.version + 1)
            )
        if stale:
            s.execute(delete(t.CheckoutLock).where(t.CheckoutLock.id.in_([lk.id for lk in stale])))
            for listing in {lk.listing_id for lk in stale}:
                row = s.get(t.Inventory, listing, populate_existing=True)
                if row is not None:
                    emit_changed(s, row, "lock_expired", self.source)
        return len(stale)
