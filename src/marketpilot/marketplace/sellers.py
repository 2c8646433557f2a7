"""Sellers (merchants)."""

from __future__ import annotations

from sqlalchemy import select

from marketpilot.domain.entities import Seller, SellerIn
from marketpilot.domain.errors import Conflict, NotFound
from marketpilot.marketplace.page import Page
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow


class SellerService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, seller: SellerIn) -> Seller:
        with self.db.session() as s:
            if s.get(t.Seller, seller.id) is not None:
                raise Conflict(f"seller {seller.id!r} already exists")
            row = t.Seller(**seller.model_dump(exclude={"created_at"}), created_at=seller.created_at or utcnow())
            s.add(row)
            s.flush()
            return Seller.model_validate(row)

    def get(self, seller_id: str, *, scope: str | None = None) -> Seller:
        if scope is not None and scope != seller_id:
            raise NotFound(f"seller {seller_id!r} not found")
        with self.db.read() as s:
            row = s.get(t.Seller, seller_id)
            if row is None:
                raise NotFound(f"seller {seller_id!r} not found")
            return Seller.model_validate(row)

    def list(self, *, limit: int, cursor: str | None = None, scope: str | None = None) -> Page[Seller]:
        q = select(t.Seller).order_by(t.Seller.id).limit(limit + 1)
        if cursor:
            q = q.where(t.Seller.id > cursor)
        if scope is not None:
            q = q.where(t.Seller.id == scope)
        with self.db.read() as s:
            rows = list(s.scalars(q))
        items = [Seller.model_validate(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=items[-1].id if len(rows) > limit else None)
