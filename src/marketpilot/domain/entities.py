"""Entities of the marketplace as plain, typed records.

Money is always an integer amount of minor units plus an ISO 4217 currency code.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

# Currencies we accept, with their minor-unit exponent (ISO 4217).
CURRENCY_EXPONENT: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RON": 2, "CAD": 2, "AUD": 2, "JPY": 0, "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2,
}


class ListingStatus(StrEnum):
    ACTIVE = "active"
    DRAFT = "draft"
    SOLD_OUT = "sold_out"
    DELISTED = "delisted"


class InteractionType(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Money(msgspec.Struct, frozen=True):
    amount_minor: int
    currency: str


class Seller(msgspec.Struct, kw_only=True):
    id: str
    name: str
    country: str | None = None
    created_at: datetime
    external_history_ref: str | None = None


class Listing(msgspec.Struct, kw_only=True):
    id: str
    seller_id: str
    title: str
    description: str = ""
    category_path: str
    attributes: dict[str, Any] = {}
    price_minor: int
    currency: str
    status: ListingStatus = ListingStatus.ACTIVE
    created_at: datetime


class User(msgspec.Struct, kw_only=True):
    id: str
    region: str
    segment: str | None = None
    created_at: datetime


class Interaction(msgspec.Struct, kw_only=True):
    user_id: str
    listing_id: str
    event: InteractionType
    timestamp: datetime
    value: float | None = None
    session_id: str | None = None
    position: int | None = None
    request_id: str | None = None


class OrderLine(msgspec.Struct, kw_only=True):
    listing_id: str
    quantity: int
    unit_price_minor: int


class Order(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    seller_id: str
    currency: str
    lines: list[OrderLine]
    status: OrderStatus = OrderStatus.PLACED
    shipping_region: str | None = None
    created_at: datetime

    @property
    def total_minor(self) -> int:
        return sum(line.quantity * line.unit_price_minor for line in self.lines)
