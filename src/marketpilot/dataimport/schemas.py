"""The import schema of every entity kind: the columns a CSV/Parquet file carries.

This module is the single source of truth for `docs/data-import.md`, the importer's
validation, the simulator's output and the real-dataset loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from marketpilot.domain.entities import EMAIL_PATTERN


class ColumnType(StrEnum):
    STR = "str"
    INT = "int"  # integer; money columns are integer minor units
    FLOAT = "float"
    TIMESTAMP = "timestamp"  # ISO 8601 or Unix seconds; stored as UTC
    JSON = "json"  # a JSON object serialised in the cell
    CURRENCY = "currency"  # ISO 4217 code we know (see domain.entities.CURRENCY_EXPONENT)


@dataclass(frozen=True)
class Column:
    """One column of an import file.

    The fields after `description` were added for the importer's validation; each mirrors a
    limit the database or a domain entity enforces anyway, so a file is rejected with a
    row-level message instead of failing half-way inside the database.
    """

    name: str
    type: ColumnType
    required: bool = True
    choices: tuple[str, ...] | None = None
    min_value: float | None = None
    description: str = ""
    default: str | None = None  # value used for an empty cell of an optional column (as written in a file)
    max_length: int | None = None  # STR: at most this many characters (the database column's size)
    max_value: float | None = None
    identifier: bool = False  # STR: an id matching domain.entities.ID_PATTERN
    pattern: str | None = None  # STR: a regular expression the whole cell must match


@dataclass(frozen=True)
class Schema:
    kind: str
    key: tuple[str, ...]  # columns that identify a row (re-import updates, never duplicates)
    columns: tuple[Column, ...]
    description: str

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.kind} has no column {name!r}")


S, I, F, T, J, C = (ColumnType.STR, ColumnType.INT, ColumnType.FLOAT, ColumnType.TIMESTAMP,  # noqa: E741
                    ColumnType.JSON, ColumnType.CURRENCY)

INTERACTION_EVENTS = ("view", "click", "add_to_cart", "purchase", "rating")
LISTING_STATUSES = ("active", "draft", "sold_out", "delisted")

# Limits shared by several columns (they mirror the database's column sizes).
ID: dict[str, Any] = {"identifier": True, "max_length": 64}
REGION: dict[str, Any] = {"max_length": 32}
MONEY_MAX = 10**15  # domain.entities.MinorUnits
INT32_MAX = 2**31 - 1  # INTEGER columns (quantities, positions)

SCHEMAS: dict[str, Schema] = {
    s.kind: s
    for s in (
        Schema("sellers", ("seller_id",), (
            Column("seller_id", S, **ID),
            Column("name", S, max_length=200),
            Column("country", S, required=False, description="ISO 3166 alpha-2", pattern=r"^[A-Z]{2}$"),
            Column("created_at", T, required=False, description="empty: kept on re-import, the import time for a new row"),
            Column("external_history_ref", S, required=False,
                   description="id of the seller's linked history on another marketplace", max_length=200),
        ), "Sellers (merchants)."),
        Schema("listings", ("listing_id",), (
            Column("listing_id", S, **ID),
            Column("seller_id", S, description="must exist (imported earlier or created through the API)", **ID),
            Column("title", S, max_length=300),
            Column("description", S, required=False, default="", max_length=20_000),
            Column("category_path", S, description="e.g. 'fashion/women/shoes', '/'-separated", max_length=300),
            Column("attributes", J, required=False, description='JSON object, e.g. {"brand": "acme"}', default="{}"),
            Column("price_minor", I, min_value=0, description="price in minor units (cents)", max_value=MONEY_MAX),
            Column("currency", C),
            Column("status", S, required=False, choices=LISTING_STATUSES, default="active"),
            Column("quantity", I, required=False, min_value=0,
                   description="units in stock; empty: 1 for a new listing, stock unchanged for an existing one",
                   max_value=10**9),
            Column("created_at", T, required=False, description="empty: kept on re-import, the import time for a new row"),
        ), "Listings with their stock; a listing's seller must exist (same file set or database)."),
        Schema("users", ("user_id",), (
            Column("user_id", S, **ID),
            Column("region", S, **REGION),
            Column("segment", S, required=False, max_length=32),
            Column("email", S, required=False, max_length=254, pattern=EMAIL_PATTERN,
                   description="one e-mail address, where the buyer's order e-mails go; empty: none"),
            Column("created_at", T, required=False, description="empty: kept on re-import, the import time for a new row"),
        ), "Buyers."),
        Schema("interactions", ("user_id", "listing_id", "event", "timestamp"), (
            Column("user_id", S, **ID),
            Column("listing_id", S, **ID),
            Column("event", S, choices=INTERACTION_EVENTS),
            Column("value", F, required=False, description="rating or quantity; empty allowed"),
            Column("timestamp", T),
            Column("session_id", S, required=False, **ID),
            Column("position", I, required=False, min_value=0, description="rank at which the listing was shown",
                   max_value=INT32_MAX),
            Column("request_id", S, required=False, description="recommendation request that showed it", max_length=64),
        ), "Buyer interactions with listings. The first five columns are the fixed minimum."),
        Schema("orders", ("order_id", "listing_id"), (
            Column("order_id", S, **ID),
            Column("user_id", S, **ID),
            Column("seller_id", S, description="the seller of every listing in the order", **ID),
            Column("listing_id", S, description="must exist and belong to seller_id", **ID),
            Column("quantity", I, min_value=1, max_value=INT32_MAX),
            Column("unit_price_minor", I, min_value=0, max_value=MONEY_MAX),
            Column("currency", C),
            Column("shipping_region", S, required=False, **REGION),
            Column("status", S, required=False,
                   choices=("placed", "paid", "shipped", "delivered", "cancelled", "failed"), default="placed"),
            Column("created_at", T),
        ), "Order lines, one row per (order, listing); rows of one order share its header columns."),
        Schema("transactions", ("transaction_id",), (
            Column("transaction_id", S, **ID),
            Column("user_id", S, **ID),
            Column("order_id", S, required=False, **ID),
            Column("amount_minor", I, min_value=0, max_value=MONEY_MAX),
            Column("currency", C),
            Column("instrument_fingerprint", S, description="hash of the card or account used", max_length=128),
            Column("device_id", S, required=False, max_length=128),
            Column("ip", S, required=False, max_length=45),
            Column("email_domain", S, required=False, max_length=128),
            Column("ip_region", S, required=False, **REGION),
            Column("shipping_region", S, required=False, **REGION),
            Column("timestamp", T),
            Column("label", I, required=False, choices=("0", "1"), description="1 = confirmed fraud"),
        ), "Payment transactions as the fraud models see them."),
        Schema("sales", ("listing_id", "region", "date"), (
            Column("listing_id", S, description="listing or SKU id", **ID),
            Column("region", S, **REGION),
            Column("date", T, description="the day (midnight UTC)"),
            Column("quantity", F, min_value=0),
            Column("price_minor", I, required=False, min_value=0, description="needs currency", max_value=MONEY_MAX),
            Column("currency", C, required=False),
            Column("promo", I, required=False, choices=("0", "1"), default="0"),
        ), "Unit sales per listing, region and day: the forecasting input."),
        Schema("shipments", ("shipment_id",), (
            Column("shipment_id", S, **ID),
            Column("order_id", S, **ID),
            Column("carrier", S, max_length=64),
            Column("origin_region", S, required=False, **REGION),
            Column("destination_region", S, required=False, **REGION),
            Column("status", S, required=False,
                   choices=("created", "in_transit", "delivered", "lost", "returned", "cancelled"), default="created"),
            Column("shipped_at", T, required=False),
            Column("promised_at", T, required=False),
            Column("delivered_at", T, required=False),
        ), "Shipments with promised and actual delivery times."),
    )
}
