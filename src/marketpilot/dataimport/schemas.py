"""The import schema of every entity kind: the columns a CSV/Parquet file carries.

This module is the single source of truth for `docs/data-import.md`, the importer's
validation, the simulator's output and the real-dataset loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ColumnType(StrEnum):
    STR = "str"
    INT = "int"  # integer; money columns are integer minor units
    FLOAT = "float"
    TIMESTAMP = "timestamp"  # ISO 8601 or Unix seconds; stored as UTC
    JSON = "json"  # a JSON object serialised in the cell
    CURRENCY = "currency"  # ISO 4217 code we know (see domain.entities.CURRENCY_EXPONENT)


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = True
    choices: tuple[str, ...] | None = None
    min_value: float | None = None
    description: str = ""


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


S, I, F, T, J, C = (ColumnType.STR, ColumnType.INT, ColumnType.FLOAT, ColumnType.TIMESTAMP,  # noqa: E741
                    ColumnType.JSON, ColumnType.CURRENCY)

INTERACTION_EVENTS = ("view", "click", "add_to_cart", "purchase", "rating")
LISTING_STATUSES = ("active", "draft", "sold_out", "delisted")

SCHEMAS: dict[str, Schema] = {
    s.kind: s
    for s in (
        Schema("sellers", ("seller_id",), (
            Column("seller_id", S),
            Column("name", S),
            Column("country", S, required=False, description="ISO 3166 alpha-2"),
            Column("created_at", T, required=False),
            Column("external_history_ref", S, required=False,
                   description="id of the seller's linked history on another marketplace"),
        ), "Sellers (merchants)."),
        Schema("listings", ("listing_id",), (
            Column("listing_id", S),
            Column("seller_id", S),
            Column("title", S),
            Column("description", S, required=False),
            Column("category_path", S, description="e.g. 'fashion/women/shoes', '/'-separated"),
            Column("attributes", J, required=False, description='JSON object, e.g. {"brand": "acme"}'),
            Column("price_minor", I, min_value=0, description="price in minor units (cents)"),
            Column("currency", C),
            Column("status", S, required=False, choices=LISTING_STATUSES),
            Column("quantity", I, required=False, min_value=0, description="units in stock"),
            Column("created_at", T, required=False),
        ), "Listings with their stock; a listing's seller must exist (same file set or database)."),
        Schema("users", ("user_id",), (
            Column("user_id", S),
            Column("region", S),
            Column("segment", S, required=False),
            Column("created_at", T, required=False),
        ), "Buyers."),
        Schema("interactions", ("user_id", "listing_id", "event", "timestamp"), (
            Column("user_id", S),
            Column("listing_id", S),
            Column("event", S, choices=INTERACTION_EVENTS),
            Column("value", F, required=False, description="rating or quantity; empty allowed"),
            Column("timestamp", T),
            Column("session_id", S, required=False),
            Column("position", I, required=False, min_value=0),
            Column("request_id", S, required=False),
        ), "Buyer interactions with listings. The first five columns are the fixed minimum."),
        Schema("orders", ("order_id", "listing_id"), (
            Column("order_id", S),
            Column("user_id", S),
            Column("seller_id", S),
            Column("listing_id", S),
            Column("quantity", I, min_value=1),
            Column("unit_price_minor", I, min_value=0),
            Column("currency", C),
            Column("shipping_region", S, required=False),
            Column("status", S, required=False,
                   choices=("placed", "paid", "shipped", "delivered", "cancelled", "failed")),
            Column("created_at", T),
        ), "Order lines, one row per (order, listing); rows of one order share its header columns."),
        Schema("transactions", ("transaction_id",), (
            Column("transaction_id", S),
            Column("user_id", S),
            Column("order_id", S, required=False),
            Column("amount_minor", I, min_value=0),
            Column("currency", C),
            Column("instrument_fingerprint", S),
            Column("device_id", S, required=False),
            Column("ip", S, required=False),
            Column("email_domain", S, required=False),
            Column("ip_region", S, required=False),
            Column("shipping_region", S, required=False),
            Column("timestamp", T),
            Column("label", I, required=False, choices=("0", "1"), description="1 = confirmed fraud"),
        ), "Payment transactions as the fraud models see them."),
        Schema("sales", ("listing_id", "region", "date"), (
            Column("listing_id", S, description="listing or SKU id"),
            Column("region", S),
            Column("date", T),
            Column("quantity", F, min_value=0),
            Column("price_minor", I, required=False, min_value=0),
            Column("currency", C, required=False),
            Column("promo", I, required=False, choices=("0", "1")),
        ), "Unit sales per listing, region and day: the forecasting input."),
        Schema("shipments", ("shipment_id",), (
            Column("shipment_id", S),
            Column("order_id", S),
            Column("carrier", S),
            Column("origin_region", S, required=False),
            Column("destination_region", S, required=False),
            Column("status", S, required=False,
                   choices=("created", "in_transit", "delivered", "lost", "returned", "cancelled")),
            Column("shipped_at", T, required=False),
            Column("promised_at", T, required=False),
            Column("delivered_at", T, required=False),
        ), "Shipments with promised and actual delivery times."),
    )
}
