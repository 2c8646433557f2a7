"""Event types of the marketplace and the payload each carries.

Every event travels as a CloudEvents 1.0 envelope (see `platform.events.cloudevent`);
`type` is ``"marketpilot." + snake name`` e.g. ``marketpilot.listing.created``; `subject`
is the aggregate id (the Kafka key in the distributed profile).
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class EventData(msgspec.Struct, kw_only=True):
    """Base of every event payload. `TYPE` is the CloudEvents type; `aggregate` names the
    field whose value becomes the event subject and partition key."""

    TYPE: ClassVar[str]
    AGGREGATE: ClassVar[str]

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.AGGREGATE))


class ListingCreated(EventData, kw_only=True):
    TYPE = "marketpilot.listing.created"
    AGGREGATE = "listing_id"
    listing_id: str
    seller_id: str
    title: str
    category_path: str
    price_minor: int
    currency: str
    status: str


class ListingUpdated(EventData, kw_only=True):
    TYPE = "marketpilot.listing.updated"
    AGGREGATE = "listing_id"
    listing_id: str
    seller_id: str
    changes: dict[str, Any]


class InventoryChanged(EventData, kw_only=True):
    TYPE = "marketpilot.inventory.changed"
    AGGREGATE = "listing_id"
    listing_id: str
    quantity: int
    reserved: int
    available: int
    reason: str


class InteractionLogged(EventData, kw_only=True):
    TYPE = "marketpilot.interaction.logged"
    AGGREGATE = "user_id"
    interaction_id: str
    user_id: str
    listing_id: str
    event: str
    value: float | None = None
    session_id: str | None = None
    position: int | None = None
    request_id: str | None = None
    timestamp: str


class OrderPlaced(EventData, kw_only=True):
    TYPE = "marketpilot.order.placed"
    AGGREGATE = "order_id"
    order_id: str
    user_id: str
    seller_id: str
    total_minor: int
    currency: str
    lines: list[dict[str, Any]]
    shipping_region: str | None = None


class PaymentAuthorized(EventData, kw_only=True):
    TYPE = "marketpilot.payment.authorized"
    AGGREGATE = "order_id"
    payment_id: str
    order_id: str
    amount_minor: int
    currency: str


class PaymentFailed(EventData, kw_only=True):
    TYPE = "marketpilot.payment.failed"
    AGGREGATE = "order_id"
    payment_id: str
    order_id: str
    amount_minor: int
    currency: str
    reason: str


class ShipmentCreated(EventData, kw_only=True):
    TYPE = "marketpilot.shipment.created"
    AGGREGATE = "order_id"
    shipment_id: str
    order_id: str
    carrier: str
    origin_region: str | None = None
    destination_region: str | None = None


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.TYPE: cls
    for cls in (
        ListingCreated,
        ListingUpdated,
        InventoryChanged,
        InteractionLogged,
        OrderPlaced,
        PaymentAuthorized,
        PaymentFailed,
        ShipmentCreated,
    )
}


def register_event_type(cls: type[EventData]) -> type[EventData]:
    """Later capabilities add their own event types (decorator)."""
    EVENT_TYPES[cls.TYPE] = cls
    return cls


class DataImported(EventData, kw_only=True):
    """A file of history was imported (batch materialisers react to this, not to each row)."""

    TYPE = "marketpilot.data.imported"
    AGGREGATE = "batch_id"
    batch_id: str
    kind: str
    rows: int
    filename: str


register_event_type(DataImported)


class DriftDetected(EventData, kw_only=True):
    """A model's live inputs or predictions drifted from its training reference over one
    closed monitoring window (`platform.monitoring.drift`). `report_id` is the stored report
    with every column's statistics; `psi` and `p_adjusted` cover the drifted columns only."""

    TYPE = "marketpilot.drift.detected"
    AGGREGATE = "model"
    report_id: int
    model: str
    model_version: str | None = None
    window_start: str
    window_end: str
    observations: int
    features: list[str]
    psi: dict[str, float]
    p_adjusted: dict[str, float]


register_event_type(DriftDetected)
