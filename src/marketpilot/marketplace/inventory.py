"""Stock per listing, with checkout locks that hold units until they expire.

Reservation is one conditional UPDATE (`available >= wanted` checked by the database inside
the write), so concurrent checkouts can never reserve more than is in stock, on SQLite
(writers serialised by BEGIN IMMEDIATE) and PostgreSQL (row lock) alike.

Locking and finishing a lock run in every order workflow, so they are Core statements built
once (bind parameters, RETURNING the row they changed): no ORM unit of work, no read-back of
the row, and no statement construction or cache-key computation per call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from marketpilot.domain.entities import CheckoutLock, CheckoutLockIn, InventoryLevel
from marketpilot.domain.errors import Conflict, InsufficientStock, NotFound
from marketpilot.domain.events import InventoryChanged
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.engine import Executor
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox


class StockRow(Protocol):
    """An inventory row: the ORM object or a row RETURNING these columns."""

    listing_id: str
    quantity: int
    reserved: int
    updated_at: datetime


INVENTORY: Table = t.Inventory.__table__  # type: ignore[assignment]
LOCKS: Table = t.CheckoutLock.__table__  # type: ignore[assignment]
_STOCK = (INVENTORY.c.listing_id, INVENTORY.c.quantity, INVENTORY.c.reserved, INVENTORY.c.updated_at)

# Bind names differ from the column names: SQLAlchemy reserves those for SET/VALUES.
_RESERVE = (
    update(INVENTORY)
    .where(INVENTORY.c.listing_id == bindparam("b_listing"),
           INVENTORY.c.quantity - INVENTORY.c.reserved >= bindparam("b_units"))
    .values(reserved=INVENTORY.c.reserved + bindparam("b_units"), version=INVENTORY.c.version + 1)
    .returning(*_STOCK)
)
_RELEASE = (
    update(INVENTORY)
    .where(INVENTORY.c.listing_id == bindparam("b_listing"))
    .values(reserved=INVENTORY.c.reserved - bindparam("b_units"), version=INVENTORY.c.version + 1)
    .returning(*_STOCK)
)
_SELL = (
    update(INVENTORY)
    .where(INVENTORY.c.listing_id == bindparam("b_listing"))
    .values(reserved=INVENTORY.c.reserved - bindparam("b_units"), quantity=INVENTORY.c.quantity - bindparam("b_units"),
            version=INVENTORY.c.version + 1)
    .returning(*_STOCK)
)
_INSERT_LOCK = insert(LOCKS)
_DELETE_LOCK = delete(LOCKS).where(LOCKS.c.id == bindparam("b_lock")).returning(LOCKS.c.listing_id, LOCKS.c.quantity)
_STALE_OF_LISTING = select(LOCKS.c.id, LOCKS.c.listing_id, LOCKS.c.quantity).where(
    LOCKS.c.expires_at <= bindparam("b_now"), LOCKS.c.listing_id == bindparam("b_listing"))
_STALE = select(LOCKS.c.id, LOCKS.c.listing_id, LOCKS.c.quantity).where(LOCKS.c.expires_at <= bindparam("b_now"))


def level(row: StockRow) -> InventoryLevel:
    return InventoryLevel(
        listing_id=row.listing_id,
        quantity=row.quantity,
        reserved=row.reserved,
        available=row.quantity - row.reserved,
        updated_at=row.updated_at,
    )


def emit_changed(session: Executor, row: StockRow, reason: str, source: str) -> None:
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
    def _transaction(self, session: Executor | None) -> Iterator[Executor]:
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
        self, listing_id: str, request: CheckoutLockIn, *, now: datetime | None = None, session: Executor | None = None
    ) -> CheckoutLock:
        """Hold `request.quantity` units until the lock expires; InsufficientStock if they
        are not available. With `session`, inside the caller's (write) transaction."""
        now = now or utcnow()
        with self._transaction(session) as s:
            self._expire(s, listing_id, now)
            row = s.execute(_RESERVE, {"b_listing": listing_id, "b_units": request.quantity}).first()
            if row is None:
                current = s.execute(select(INVENTORY.c.quantity, INVENTORY.c.reserved)
                                    .where(INVENTORY.c.listing_id == listing_id)).first()
                if current is None:
                    raise NotFound(f"inventory for listing {listing_id!r} not found")
                raise InsufficientStock(
                    f"listing {listing_id!r} has {current.quantity - current.reserved} units available, "
                    f"{request.quantity} requested"
                )
            lock = CheckoutLock(id=uuid.uuid4().hex, listing_id=listing_id, quantity=request.quantity,
                                holder=request.holder, expires_at=now + timedelta(seconds=request.ttl_seconds))
            s.execute(_INSERT_LOCK, {**lock.model_dump(), "created_at": now})
            emit_changed(s, row, "locked", self.source)
            return lock

    def release(self, lock_id: str, *, session: Executor | None = None) -> InventoryLevel:
        """Give the units of a lock back (checkout abandoned or failed)."""
        return self._finish(lock_id, sold=False, session=session)

    def commit(self, lock_id: str, *, session: Executor | None = None) -> InventoryLevel:
        """Turn a lock into a sale: the units leave stock."""
        return self._finish(lock_id, sold=True, session=session)

    def _finish(self, lock_id: str, *, sold: bool, session: Executor | None) -> InventoryLevel:
        with self._transaction(session) as s:
            lock = s.execute(_DELETE_LOCK, {"b_lock": lock_id}).first()
            if lock is None:
                raise NotFound(f"checkout lock {lock_id!r} not found (released, committed or expired)")
            row = s.execute(_SELL if sold else _RELEASE, {"b_listing": lock.listing_id, "b_units": lock.quantity}).one()
            emit_changed(s, row, "sold" if sold else "released", self.source)
            return level(row)

    def expire_locks(self, now: datetime | None = None) -> int:
        """Release every lock past its expiry; returns how many were released."""
        with self.db.session() as s:
            return self._expire(s, None, now or utcnow())

    def _expire(self, s: Executor, listing_id: str | None, now: datetime) -> int:
        if listing_id is None:
            stale = s.execute(_STALE, {"b_now": now}).all()
        else:
            stale = s.execute(_STALE_OF_LISTING, {"b_now": now, "b_listing": listing_id}).all()
        if not stale:
            return 0
        s.execute(delete(LOCKS).where(LOCKS.c.id.in_([lk.id for lk in stale])))
        rows: dict[str, Any] = {}
        for lock in stale:
            row = s.execute(_RELEASE, {"b_listing": lock.listing_id, "b_units": lock.quantity}).first()
            if row is not None:
                rows[lock.listing_id] = row
        for row in rows.values():
            emit_changed(s, row, "lock_expired", self.source)
        return len(stale)
