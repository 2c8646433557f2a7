"""Orders: placed by the storefront (operator/service keys), read by their seller too.

Placing an order records it and announces `OrderPlaced`; stock is reserved by the order
workflow that reacts to that event, not here, so a placement never blocks on payment.
"""

from __future__ import annotations

from sqlalchemy import Table, bindparam, insert, select

from marketpilot.domain.entities import Order, OrderIn, OrderLine, OrderStatus
from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.domain.events import OrderPlaced
from marketpilot.marketplace.inventory import INVENTORY
from marketpilot.marketplace.page import Page
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox

_ORDERS: Table = t.Order.__table__  # type: ignore[assignment]
_LINES: Table = t.OrderLine.__table__  # type: ignore[assignment]
_LISTINGS: Table = t.Listing.__table__  # type: ignore[assignment]
# Built once (a placement runs them all): bind parameters, no statement building per call.
_ORDER_EXISTS = select(_ORDERS.c.id).where(_ORDERS.c.id == bindparam("b_id"))
_LISTINGS_OF = select(_LISTINGS.c.id, _LISTINGS.c.status, _LISTINGS.c.seller_id, _LISTINGS.c.currency,
                      _LISTINGS.c.price_minor).where(_LISTINGS.c.id.in_(bindparam("b_ids", expanding=True)))
_STOCK_OF = select(INVENTORY.c.listing_id, INVENTORY.c.quantity, INVENTORY.c.reserved).where(
    INVENTORY.c.listing_id.in_(bindparam("b_ids", expanding=True)))
_INSERT_ORDER = insert(_ORDERS)
_INSERT_LINES = insert(_LINES)


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
        # Core statements on a Core connection (Database.write): the checks and the inserts
        # stay in one write transaction, as they must (a listing delisted or repriced
        # meanwhile is seen), without the ORM's per-statement cost while SQLite's single
        # writer is held.
        ids = [ln.listing_id for ln in order.lines]
        with self.db.write() as c:
            if c.execute(_ORDER_EXISTS, {"b_id": order.id}).first() is not None:
                raise Conflict(f"order {order.id!r} already exists")
            listings = {r.id: r for r in c.execute(_LISTINGS_OF, {"b_ids": ids})}
            stock = {r.listing_id: r for r in c.execute(_STOCK_OF, {"b_ids": ids})}
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
            lines = [OrderLine(listing_id=ln.listing_id, quantity=ln.quantity,
                               unit_price_minor=listings[ln.listing_id].price_minor) for ln in order.lines]
            placed = Order(
                id=order.id, user_id=order.user_id, seller_id=sellers.pop(), status=OrderStatus.PLACED,
                total_minor=sum(ln.quantity * ln.unit_price_minor for ln in lines), currency=currencies.pop(),
                shipping_region=order.shipping_region, lines=lines, created_at=now,
            )
            c.execute(_INSERT_ORDER, {
                "id": placed.id, "user_id": placed.user_id, "seller_id": placed.seller_id, "status": placed.status.value,
                "total_minor": placed.total_minor, "currency": placed.currency,
                "shipping_region": placed.shipping_region, "created_at": now, "updated_at": now,
            })
            c.execute(_INSERT_LINES, [{"order_id": placed.id, **ln.model_dump()} for ln in lines])
            outbox.append(
                c,
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
