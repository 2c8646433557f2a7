"""The availability mask: sold out, checkout-locked, draft and delisted listings are never
servable once their event is in the outbox; filters and suppression narrow it further."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from marketpilot.domain.entities import (
    CheckoutLockIn,
    ListingIn,
    ListingPatch,
    ListingStatus,
    OrderIn,
    OrderLineIn,
    SellerIn,
    UserIn,
)
from marketpilot.domain.events import InventoryChanged
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.dispatcher import Dispatcher
from marketpilot.recommend.availability import Availability, Filters, SuppressionRule
from marketpilot.recommend.model import Catalog
from marketpilot.runtime import Runtime

CATEGORIES = ["fashion/shoes", "fashion", "fashionable", "home/garden"]


@pytest.fixture
def rt(db: Database, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(database_url=db.url, home=tmp_path / "home"), migrate=False)
    runtime.sellers.create(SellerIn(id="s1", name="Shop"))
    for i in range(8):
        runtime.listings.create(
            ListingIn(
                id=f"l{i}",
                seller_id="s1",
                title=f"Item {i}",
                category_path=CATEGORIES[i % 4],
                price_minor=100 * (i + 1),
                currency="EUR",
                quantity=2,
            )
        )
    runtime.users.create(UserIn(id="u1", region="eu"))
    runtime.users.create(UserIn(id="u2", region="eu"))
    yield runtime
    runtime.close()


def servable(av: Availability, filters: Filters | None = None) -> set[str]:
    mask = av.mask(filters)
    return {av.universe.ids[i] for i in np.flatnonzero(mask)}


def test_every_active_listing_in_stock_is_servable_at_load(rt: Runtime) -> None:
    av = Availability(rt.db)
    assert servable(av) == {f"l{i}" for i in range(8)}


def test_sold_out_listing_is_hidden_from_the_next_refresh_and_back_after_restock(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    rt.inventory.set_quantity("l3", 0)
    av.refresh()
    assert "l3" not in servable(av)
    rt.inventory.set_quantity("l3", 4)
    av.refresh()
    assert "l3" in servable(av)


def test_listing_whose_stock_is_all_held_by_checkout_locks_is_hidden_until_released(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    lock = rt.inventory.lock("l2", CheckoutLockIn(quantity=2, holder="cart-1"))
    av.refresh()
    assert not av.is_servable("l2")
    rt.inventory.release(lock.id)
    av.refresh()
    assert av.is_servable("l2")


def test_partly_locked_listing_with_units_left_stays_servable(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    rt.inventory.lock("l2", CheckoutLockIn(quantity=1, holder="cart-1"))
    av.refresh()
    assert av.is_servable("l2")


def test_delisted_and_draft_listings_are_hidden(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    rt.listings.update("l1", ListingPatch(status=ListingStatus.DELISTED))
    rt.listings.update("l4", ListingPatch(status=ListingStatus.DRAFT))
    av.refresh()
    assert {"l1", "l4"}.isdisjoint(servable(av))
    rt.listings.update("l1", ListingPatch(status=ListingStatus.ACTIVE))
    av.refresh()
    assert av.is_servable("l1")


def test_listing_created_after_load_becomes_servable_without_a_reload(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    rt.listings.create(
        ListingIn(id="new", seller_id="s1", title="New", category_path="home", price_minor=5, currency="EUR")
    )
    av.refresh()
    assert av.is_servable("new")
    assert av.universe.ids[-1] == "new"


def test_state_loaded_after_the_change_already_excludes_it(rt: Runtime) -> None:
    rt.inventory.set_quantity("l0", 0)
    rt.listings.update("l5", ListingPatch(status=ListingStatus.DELISTED))
    assert {"l0", "l5"}.isdisjoint(servable(Availability(rt.db)))


def test_category_filter_matches_the_path_and_below_only(rt: Runtime) -> None:
    av = Availability(rt.db)
    assert servable(av, Filters(category="fashion")) == {"l0", "l1", "l4", "l5"}
    assert servable(av, Filters(category="fashion/shoes")) == {"l0", "l4"}
    assert servable(av, Filters(category="fashionable")) == {"l2", "l6"}
    assert servable(av, Filters(category="toys")) == set()


def test_price_range_is_inclusive(rt: Runtime) -> None:
    av = Availability(rt.db)
    assert servable(av, Filters(min_price=200, max_price=400)) == {"l1", "l2", "l3"}
    assert servable(av, Filters(category="fashion", max_price=200)) == {"l0", "l1"}


def test_event_bus_delivery_updates_the_mask_without_reading_the_outbox(rt: Runtime) -> None:
    av = rt.recommendations.availability
    av.ensure_loaded()
    dispatcher = Dispatcher(rt.db, rt.event_bus)
    dispatcher.run_once()
    cursor = av.cursor
    rt.inventory.set_quantity("l6", 0)
    dispatcher.run_once()
    assert av.cursor == cursor  # the table was not read again
    assert not av.is_servable("l6")


def test_an_older_event_never_overwrites_a_newer_state(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    rt.inventory.set_quantity("l7", 3)
    rt.inventory.set_quantity("l7", 0)
    av.refresh()
    stale = CloudEvent.create(
        InventoryChanged(listing_id="l7", quantity=3, reserved=0, available=3, reason="set"), "test"
    )
    # Replayed from the table at a position already applied: ignored.
    assert av._apply(stale, 1) == 0
    assert not av.is_servable("l7")


def test_purchased_items_are_suppressed_for_the_buyer_only(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    rt.orders.place(OrderIn(id="o1", user_id="u1", lines=[OrderLineIn(listing_id="l3", quantity=1)]))
    av.refresh()
    index = av.universe.index
    assert av.suppressed("u1", "u1").tolist() == [index["l3"]]
    assert av.suppressed("u2", "u2").tolist() == []


def test_purchases_before_start_up_are_suppressed_and_the_rule_can_switch_it_off(rt: Runtime) -> None:
    rt.orders.place(OrderIn(id="o1", user_id="u1", lines=[OrderLineIn(listing_id="l3", quantity=1)]))
    on = Availability(rt.db)
    on.ensure_loaded()
    assert on.suppressed("u1", None).tolist() == [on.universe.index["l3"]]
    off = Availability(rt.db, rule=SuppressionRule(purchased_days=0))
    off.ensure_loaded()
    assert off.suppressed("u1", None).tolist() == []


def test_purchases_older_than_the_window_are_not_suppressed(rt: Runtime) -> None:
    rt.orders.place(OrderIn(id="o1", user_id="u1", lines=[OrderLineIn(listing_id="l3", quantity=1)]))
    later = datetime.now(UTC).timestamp() + 31 * 86400
    av = Availability(rt.db, clock=lambda: later)
    av.ensure_loaded()
    assert av.suppressed("u1", None).tolist() == []


def test_items_shown_max_impressions_times_are_suppressed_for_that_subject(rt: Runtime) -> None:
    av = Availability(rt.db, rule=SuppressionRule(max_impressions=2))
    av.ensure_loaded()
    av.record_impressions("sess-1", [0, 1])
    assert av.suppressed(None, "sess-1").tolist() == []
    av.record_impressions("sess-1", [1, 2])
    assert av.suppressed(None, "sess-1").tolist() == [1]
    assert av.suppressed(None, "sess-2").tolist() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"purchased_days": -1}, "purchased_days must be >= 0, got -1"),
        ({"max_impressions": 0}, "max_impressions must be at least 1 or None, got 0"),
        ({"impression_window_s": 0}, "impression_window_s must be positive, got 0"),
    ],
)
def test_suppression_rule_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        SuppressionRule(**kwargs)  # type: ignore[arg-type]


def test_mask_over_a_model_catalogue_hides_listings_the_database_does_not_know(rt: Runtime) -> None:
    av = Availability(rt.db)
    av.ensure_loaded()
    rt.inventory.set_quantity("l1", 0)
    av.refresh()
    catalog = Catalog.build(["l1", "ghost", "l0"], ["u1"])
    assert av.to_catalog(catalog, av.mask()).tolist() == [False, False, True]


def test_distributed_replicas_read_the_outbox_at_most_once_per_interval(rt: Runtime) -> None:
    av = Availability(rt.db, refresh_interval=3600.0)
    av.ensure_loaded()
    rt.inventory.set_quantity("l3", 0)
    assert av.refresh() == 0  # within the interval: the lag the distributed profile documents
    assert av.is_servable("l3")
    assert av.refresh(force=True) >= 1
    assert not av.is_servable("l3")
