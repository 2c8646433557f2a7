"""Listings and their creation with initial stock."""

from __future__ import annotations

from sqlalchemy import select

from marketpilot.domain.entities import Listing, ListingIn, ListingPatch, ListingStatus
from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.domain.events import ListingCreated, ListingUpdated
from marketpilot.marketplace.inventory import emit_changed
from marketpilot.marketplace.page import Page
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox


class ListingService:
    def __init__(self, db: Database, source: str) -> None:
        self.db = db
        self.source = source

    def create(self, listing: ListingIn, *, scope: str | None = None) -> Listing:
        if scope is not None and listing.seller_id != scope:
            raise InvalidInput(f"a merchant key for seller {scope!r} cannot create listings for another seller")
        with self.db.session() as s:
            if s.get(t.Seller, listing.seller_id) is None:
                raise InvalidInput(f"seller {listing.seller_id!r} does not exist")
            if s.get(t.Listing, listing.id) is not None:
                raise Conflict(f"listing {listing.id!r} already exists")
            now = utcnow()
            row = t.Listing(
                **listing.model_dump(exclude={"quantity", "created_at", "status"}),
                status=listing.status.value,
                created_at=listing.created_at or now,
                updated_at=now,
            )
            inv = t.Inventory(listing_id=listing.id, quantity=listing.quantity, reserved=0, version=0, updated_at=now)
            s.add(row)
            s.flush()
            s.add(inv)
            s.flush()
            outbox.append(
                s,
                ListingCreated(
                    listing_id=row.id,
                    seller_id=row.seller_id,
                    title=row.title,
                    category_path=row.category_path,
                    price_minor=row.price_minor,
                    currency=row.currency,
                    status=row.status,
                ),
                self.source,
            )
            emit_changed(s, inv, "created", self.source)
            return Listing.model_validate(row)

    def get(self, listing_id: str, *, scope: str | None = None) -> Listing:
        with self.db.read() as s:
            row = s.get(t.Listing, listing_id)
            if row is None or (scope is not None and row.seller_id != scope):
                raise NotFound(f"listing {listing_id!r} not found")
            return Listing.model_validate(row)

    def update(self, listing_id: str, patch: ListingPatch, *, scope: str | None = None) -> Listing:
        changes = patch.model_dump(exclude_unset=True)
        if not changes:
            raise InvalidInput("the patch changes nothing: give at least one field")
        if any(v is None for v in changes.values()):
            raise InvalidInput("fields of a patch cannot be set to null")
        with self.db.session() as s:
            row = s.get(t.Listing, listing_id)
            if row is None or (scope is not None and row.seller_id != scope):
                raise NotFound(f"listing {listing_id!r} not found")
            for key, value in changes.items():
                setattr(row, key, value.value if isinstance(value, ListingStatus) else value)
            row.updated_at = utcnow()
            s.flush()
            outbox.append(
                s,
                ListingUpdated(
                    listing_id=row.id,
                    seller_id=row.seller_id,
                    changes={k: (v.value if isinstance(v, ListingStatus) else v) for k, v in changes.items()},
                ),
                self.source,
            )
            return Listing.model_validate(row)

    def list(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        scope: str | None = None,
        seller_id: str | None = None,
        category: str | None = None,
        status: ListingStatus | None = None,
    ) -> Page[Listing]:
        q = select(t.Listing).order_by(t.Listing.id).limit(limit + 1)
        if cursor:
            q = q.where(t.Listing.id > cursor)
        if scope is not None:
            q = q.where(t.Listing.seller_id == scope)
        if seller_id:
            q = q.where(t.Listing.seller_id == seller_id)
        if category:
            q = q.where(t.Listing.category_path.startswith(category, autoescape=True))
        if status:
            q = q.where(t.Listing.status == status.value)
        with self.db.read() as s:
            rows = list(s.scalars(q))
        items = [Listing.model_validate(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=items[-1].id if len(rows) > limit else None)
