"""The data every API test starts from: two sellers' listings and orders, one buyer.

Merchant keys act for seller `s1`; seller `s2` is "another seller"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from marketpilot.domain.entities import ListingIn, OrderIn, OrderLineIn, SellerIn, UserIn
from marketpilot.platform.auth import Role
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.runtime import Runtime


@dataclass(frozen=True)
class Keys:
    operator: str
    merchant: str  # seller s1
    service: str

    def of(self, role: Role | str) -> str:
        return str(getattr(self, Role(role).value))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def seed(rt: Runtime) -> None:
    for sid in ("s1", "s2"):
        rt.sellers.create(SellerIn(id=sid, name=f"Shop {sid}"))
    for lid, sid in (("l1", "s1"), ("l2", "s2"), ("l3", "s1")):
        rt.listings.create(
            ListingIn(id=lid, seller_id=sid, title=f"Item {lid}", category_path="fashion/shoes",
                      price_minor=1000, currency="EUR", quantity=5)
        )
    rt.users.create(UserIn(id="u1", region="eu-west"))
    rt.orders.place(OrderIn(id="o1", user_id="u1", lines=[OrderLineIn(listing_id="l1", quantity=1)]))
    rt.orders.place(OrderIn(id="o2", user_id="u1", lines=[OrderLineIn(listing_id="l2", quantity=1)]))


def build_runtime(db: Database, home: Path, **settings: object) -> Runtime:
    return Runtime(load_settings(database_url=db.url, home=home, **settings), migrate=False)
