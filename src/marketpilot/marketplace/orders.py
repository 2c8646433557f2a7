"""Orders: placed by the storefront (operator/service keys), read by their seller too.

Placing an order records it and announces `OrderPlaced`; stock is reserved by the order
workflow that reacts to that event, not here, so a placement never blocks on payment.
"""

from __future__ import annotations

from sqlalchemy import select

from marketpilot.domain.entities import Order, OrderIn, OrderLine, OrderStatus
from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.domain.events import OrderPlaced
from marketpilot.marketplace.page import Page
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox


def _order(row: t.Order, lines: list[t.OrderLine]) -> Order:
    return Order(
        id=row.id,
        user_id=row.user_id,
        seller_id=row.seller_id,
        status=OrderStatus(row.status),
        total_minor=row.total_minor,
        currency=row.currency,
        shipping_region=row.shipping_region,
        lines=[OrderLine(listing_id=ln.listing_id, quantity=ln.quantity, unit_price_minor=ln.unit_price_minor) for ln in lines],
        created_at=row.created_at,
    )


class OrderService:
    def __init__(self, db: Database, source: str) -> None:
        self.db = db
        self.source = source

    def place(self, order: OrderIn) -> Order:
        with self.db.session() as s:
            if s.get(t.Order, order.id) is not None:
                raise Conflict(f"order {order.id!r} already exists")
            ids = [ln.listing_id for ln in order.lines]
            listings = {r.id: r for r in s.scalars(select(t.Listing).where(t.Listing.id.in_(ids)))}
            stock = {r.listing_id: r for r in s.scalars(select(t.Inventory).where(t.Inventory.listing_id.in_(ids)))}
            missing = [i for i in ids if i not in listings]
            if missing:
                raise InvalidInput(f"unknown listings: {', '.join(missing)}")
            inactive = [i for i in ids if listings[i].status != "active"]
            if inactive:
                raise InvalidInput(f"listings not for sale: {', '.join(inactive)}")
            sellers = {listings[i].seller_id for i in ids}
            if len(sellers) != 1:
                raise InvalidInput("an order's lines must all come from one seller; split the cart per seller")
            currencies = {listings[i].currency for i in ids}
            if len(currencies) != 1:
                raise InvalidInput("an order's lines must share one currency")
            for ln in order.lines:
                inv = stock.get(ln.listing_id)
                available = inv.quantity - inv.reserved if inv else 0
                if available < ln.quantity:
                    raise Conflict(
                        f"listing {ln.listing_id!r} has {available} units available, {ln.quantity} ordered"
                    )
            now = utcnow()
            lines = [
                t.OrderLine(order_id=order.id, listing_id=ln.listing_id, quantity=ln.quantity,
                            unit_price_minor=listings[ln.listing_id].price_minor)
                for ln in order.lines
            ]
            row = t.Order(
                id=order.id,
                user_id=order.user_id,
                seller_id=sellers.pop(),
                status=OrderStatus.PLACED.value,
                total_minor=sum(ln.quantity * ln.unit_price_minor for ln in lines),
                currency=currencies.pop(),
                shipping_region=order.shipping_region,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            s.add_all(lines)
            s.flush()
            placed = _order(row, lines)
            outbox.append(
                s,
                OrderPlaced(
                    order_id=placed.id,
                    user_id=placed.user_id,
                    seller_id=placed.seller_id,
                    total_minor=placed.total_minor,
                    currency=placed.currency,
                    lines=[ln.model_dump() for ln in placed.lines],
                    shipping_region=placed.shipping_region,
                ),
                self.source,
            )
            return placed

    def get(self, order_id: str, *, scope: str | None = None) -> Order:
        with self.db.read() as s:
            row = s.get(t.Order, order_id)
            if row is None or (scope is not None and row.seller_id != scope):
                raise NotFound(f"order {order_id!r} not found")
            lines = list(s.scalars(select(t.OrderLine).where(t.OrderLine.order_id == order_id).order_by(t.OrderLine.id)))
            return _order(row, lines)

    def list(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        scope: str | None = None,
        user_id: str | None = None,
        status: OrderStatus | None = None,
    ) -> Page[Order]:
        q = select(t.Order).order_by(t.Order.id).limit(limit + 1)
        if cursor:
            q = q.where(t.Order.id > cursor)
        if scope is not None:
            q = q.where(t.Order.seller_id == scope)
        if user_id:
            q = q.where(t.Order.user_id == user_id)
        if status:
            q = q.where(t.Order.status == status.value)
        with self.db.read() as s:
            rows = list(s.scalars(q))[: limit + 1]
            page = rows[:limit]
            all_lines = list(
                s.scalars(select(t.OrderLine).where(t.OrderLine.order_id.in_([r.id for r in page])).order_by(t.OrderLine.id))
            )
        by_order: dict[str, list[t.OrderLine]] = {}
        for ln in all_lines:
            by_order.setdefault(ln.order_id, []).append(ln)
        items = [_order(r, by_order.get(r.id, [])) for r in page]
        return Page(items=items, next_cursor=items[-1].id if len(rows) > limit else None)
