from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from marketpilot.domain.entities import (
    CheckoutLockIn,
    InteractionIn,
    ListingIn,
    ListingPatch,
    OrderIn,
    OrderLineIn,
    SellerIn,
)
from marketpilot.domain.errors import Conflict, InsufficientStock, InvalidInput, NotFound
from marketpilot.marketplace import (
    InteractionService,
    InventoryService,
    ListingService,
    OrderService,
    SellerService,
)
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t

SRC = "/test"


def outbox_types(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(t.OutboxEvent.type).order_by(t.OutboxEvent.position)))


def seed(db: Database, quantity: int = 5) -> None:
    SellerService(db).create(SellerIn(id="s1", name="Shop one"))
    SellerService(db).create(SellerIn(id="s2", name="Shop two"))
    ListingService(db, SRC).create(
        ListingIn(id="l1", seller_id="s1", title="Red shoe", category_path="fashion/shoes",
                  price_minor=2599, currency="EUR", quantity=quantity)
    )
    ListingService(db, SRC).create(
        ListingIn(id="l2", seller_id="s2", title="Blue hat", category_path="fashion/hats",
                  price_minor=1000, currency="EUR", quantity=1)
    )


def test_creating_a_listing_writes_state_and_events_in_one_transaction(db: Database) -> None:
    seed(db)
    assert outbox_types(db) == [
        "marketpilot.listing.created", "marketpilot.inventory.changed",
        "marketpilot.listing.created", "marketpilot.inventory.changed",
    ]


def test_failed_creation_leaves_no_event_behind(db: Database) -> None:
    seed(db)
    before = outbox_types(db)
    with pytest.raises(InvalidInput, match="seller 'nope' does not exist"):
        ListingService(db, SRC).create(
            ListingIn(id="l9", seller_id="nope", title="x", category_path="a", price_minor=1, currency="EUR")
        )
    assert outbox_types(db) == before


def test_merchant_scope_hides_other_sellers_listings(db: Database) -> None:
    seed(db)
    svc = ListingService(db, SRC)
    assert svc.get("l1", scope="s1").id == "l1"
    with pytest.raises(NotFound):
        svc.get("l2", scope="s1")
    with pytest.raises(NotFound):
        svc.update("l2", ListingPatch(price_minor=1), scope="s1")
    assert [x.id for x in svc.list(limit=10, scope="s1").items] == ["l1"]


def test_listing_pages_follow_the_cursor(db: Database) -> None:
    seed(db)
    svc = ListingService(db, SRC)
    first = svc.list(limit=1)
    assert [x.id for x in first.items] == ["l1"] and first.next_cursor == "l1"
    second = svc.list(limit=1, cursor=first.next_cursor)
    assert [x.id for x in second.items] == ["l2"] and second.next_cursor is None


def test_checkout_locks_reserve_release_and_sell(db: Database) -> None:
    seed(db, quantity=3)
    inv = InventoryService(db, SRC)
    lock = inv.lock("l1", CheckoutLockIn(quantity=2, holder="o1"))
    assert inv.get("l1").available == 1
    with pytest.raises(InsufficientStock, match="1 units available, 2 requested"):
        inv.lock("l1", CheckoutLockIn(quantity=2, holder="o2"))
    level = inv.commit(lock.id)
    assert (level.quantity, level.reserved, level.available) == (1, 0, 1)
    lock2 = inv.lock("l1", CheckoutLockIn(quantity=1, holder="o3"))
    assert inv.release(lock2.id).available == 1
    with pytest.raises(NotFound):
        inv.release(lock2.id)


def test_expired_locks_give_stock_back(db: Database) -> None:
    seed(db, quantity=1)
    inv = InventoryService(db, SRC)
    past = datetime.now(UTC) - timedelta(hours=1)
    inv.lock("l1", CheckoutLockIn(quantity=1, holder="o1", ttl_seconds=60), now=past)
    assert inv.expire_locks() == 1
    assert inv.get("l1").available == 1


def test_quantity_cannot_drop_below_reserved(db: Database) -> None:
    seed(db, quantity=3)
    inv = InventoryService(db, SRC)
    inv.lock("l1", CheckoutLockIn(quantity=2, holder="o1"))
    with pytest.raises(Conflict, match="below the 2 units held"):
        inv.set_quantity("l1", 1)


def test_concurrent_locks_never_oversell(db: Database) -> None:
    seed(db, quantity=10)
    inv = InventoryService(db, SRC)
    wins: list[str] = []
    losses: list[str] = []

    def buy(i: int) -> None:
        try:
            inv.lock("l1", CheckoutLockIn(quantity=1, holder=f"o{i}"))
            wins.append(f"o{i}")
        except InsufficientStock:
            losses.append(f"o{i}")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(40)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(wins) == 10 and len(losses) == 30
    level = inv.get("l1")
    assert (level.reserved, level.available) == (10, 0)


def test_order_takes_prices_from_listings_and_announces_itself(db: Database) -> None:
    seed(db)
    order = OrderService(db, SRC).place(
        OrderIn(id="o1", user_id="u1", lines=[OrderLineIn(listing_id="l1", quantity=2)], shipping_region="DE")
    )
    assert (order.seller_id, order.total_minor, order.currency) == ("s1", 5198, "EUR")
    assert outbox_types(db)[-1] == "marketpilot.order.placed"
    with pytest.raises(NotFound):
        OrderService(db, SRC).get("o1", scope="s2")
    assert OrderService(db, SRC).get("o1", scope="s1").lines[0].quantity == 2


def test_order_across_sellers_is_rejected(db: Database) -> None:
    seed(db)
    with pytest.raises(InvalidInput, match="one seller"):
        OrderService(db, SRC).place(
            OrderIn(id="o1", user_id="u1", lines=[OrderLineIn(listing_id="l1", quantity=1),
                                                  OrderLineIn(listing_id="l2", quantity=1)])
        )


def test_reingesting_interactions_stores_and_announces_each_once(db: Database) -> None:
    svc = InteractionService(db, SRC)
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    batch = [InteractionIn(user_id="u1", listing_id=f"l{i}", event="click", timestamp=ts) for i in range(5)]
    assert svc.ingest(batch) == (5, 0)
    assert svc.ingest(batch + batch[:1]) == (0, 6)
    assert svc.count() == 5
    with db.session() as s:
        n = s.scalar(select(func.count()).select_from(t.OutboxEvent).where(t.OutboxEvent.type == "marketpilot.interaction.logged"))
    assert n == 5
