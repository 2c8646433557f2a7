"""Entities of the marketplace as plain, validated records (no I/O).

These pydantic models are both the service contracts and the HTTP schema, so a field is
validated once, with one message, wherever it enters. Money is an integer amount of minor
units plus an ISO 4217 currency code.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Currencies we accept, with their minor-unit exponent (ISO 4217).
CURRENCY_EXPONENT: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RON": 2, "CAD": 2, "AUD": 2, "JPY": 0, "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2,
}

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
# One e-mail address, no display name: a local part and a dotted domain, no spaces or second
# '@'. Deliverability is the mail server's to judge; this stops shifted CSV columns and lists.
EMAIL_PATTERN = r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+$"


def _check_id(value: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError("must be 1-64 characters of letters, digits, '_', '-', '.', ':' starting with a letter or digit")
    return value


def _check_currency(value: str) -> str:
    if value not in CURRENCY_EXPONENT:
        raise ValueError(f"unknown currency {value!r}; expected one of {', '.join(sorted(CURRENCY_EXPONENT))}")
    return value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


EntityId = Annotated[str, AfterValidator(_check_id)]
Currency = Annotated[str, AfterValidator(_check_currency)]
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
MinorUnits = Annotated[int, Field(ge=0, le=10**15)]


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


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class SellerIn(Record):
    id: EntityId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    country: Annotated[str | None, Field(pattern=r"^[A-Z]{2}$")] = None
    external_history_ref: Annotated[str | None, Field(max_length=200)] = None
    created_at: UtcDatetime | None = None


class Seller(SellerIn):
    created_at: UtcDatetime


class ListingIn(Record):
    id: EntityId
    seller_id: EntityId
    title: Annotated[str, Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(max_length=20_000)] = ""
    category_path: Annotated[str, Field(min_length=1, max_length=300)]
    attributes: dict[str, Any] = Field(default_factory=dict)
    price_minor: MinorUnits
    currency: Currency
    status: ListingStatus = ListingStatus.ACTIVE
    quantity: Annotated[int, Field(ge=0, le=10**9)] = 1
    created_at: UtcDatetime | None = None


class ListingPatch(Record):
    title: Annotated[str | None, Field(min_length=1, max_length=300)] = None
    description: Annotated[str | None, Field(max_length=20_000)] = None
    category_path: Annotated[str | None, Field(min_length=1, max_length=300)] = None
    attributes: dict[str, Any] | None = None
    price_minor: MinorUnits | None = None
    currency: Currency | None = None
    status: ListingStatus | None = None


class Listing(Record):
    id: str
    seller_id: str
    title: str
    description: str
    category_path: str
    attributes: dict[str, Any]
    price_minor: int
    currency: str
    status: ListingStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime


class InventoryLevel(Record):
    listing_id: str
    quantity: int
    reserved: int
    available: int
    updated_at: UtcDatetime


class InventorySet(Record):
    quantity: Annotated[int, Field(ge=0, le=10**9)]


class CheckoutLockIn(Record):
    quantity: Annotated[int, Field(ge=1, le=10**6)]
    holder: EntityId
    ttl_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900


class CheckoutLock(Record):
    id: str
    listing_id: str
    quantity: int
    holder: str
    expires_at: UtcDatetime


class UserIn(Record):
    id: EntityId
    region: Annotated[str, Field(min_length=1, max_length=32)]
    segment: Annotated[str | None, Field(max_length=32)] = None
    email: Annotated[str | None, Field(max_length=254, pattern=EMAIL_PATTERN,
                                       description="Where the buyer's order e-mails go; none: no e-mail.")] = None
    created_at: UtcDatetime | None = None


class User(UserIn):
    created_at: UtcDatetime


class InteractionIn(Record):
    user_id: EntityId
    listing_id: EntityId
    event: InteractionType
    value: float | None = None
    timestamp: UtcDatetime
    session_id: EntityId | None = None
    position: Annotated[int | None, Field(ge=0, le=10_000)] = None
    request_id: Annotated[str | None, Field(max_length=64)] = None


class OrderLineIn(Record):
    listing_id: EntityId
    quantity: Annotated[int, Field(ge=1, le=10_000)]


class OrderIn(Record):
    id: EntityId
    user_id: EntityId
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=100)]
    shipping_region: Annotated[str | None, Field(max_length=32)] = None

    @model_validator(mode="after")
    def _distinct_listings(self) -> OrderIn:
        ids = [line.listing_id for line in self.lines]
        if len(set(ids)) != len(ids):
            raise ValueError("each listing may appear in one order line only")
        return self


class OrderLine(Record):
    listing_id: str
    quantity: int
    unit_price_minor: int


class Order(Record):
    id: str
    user_id: str
    seller_id: str
    status: OrderStatus
    total_minor: int
    currency: str
    shipping_region: str | None
    lines: list[OrderLine]
    created_at: UtcDatetime
