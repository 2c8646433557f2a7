"""The views the platform materialises itself, for every capability to read.

* ``user_recent_items``: the user's last N distinct listings interacted with, newest first;
* ``listing_engagement``: views, clicks and a smoothed click-through rate per listing;
* ``{prefix}_velocity_{key}``: count and amount of payments (or orders) per key over
  sliding windows, for the fraud models; one view per key kind because each kind is its
  own entity (a card, a device, an IP address...).

Capabilities declare views of their own next to their models; these are shared because
their materialisers are shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from marketpilot.domain.events import InteractionLogged, OrderPlaced
from marketpilot.platform.features.views import (
    EventSource,
    Feature,
    FeatureRegistry,
    FeatureView,
    TableSource,
    float32,
    float64,
    int64,
    int64_list,
    str_list,
)
from marketpilot.platform.features.windows import window_label

RECENT_ITEMS = 20
LISTING_ID_BYTES = 64  # listings.id is String(64)
VELOCITY_WINDOWS = (timedelta(hours=1), timedelta(hours=24))

# Key kinds of a payment attempt and the `transactions` column (and view entity) of each.
TRANSACTION_KEYS: dict[str, str] = {
    "user": "user_id",
    "instrument": "instrument_fingerprint",
    "device": "device_id",
    "ip": "ip",
    "email_domain": "email_domain",
}


def recent_items_view(length: int = RECENT_ITEMS, name: str = "user_recent_items") -> FeatureView:
    return FeatureView(
        name,
        "user_id",
        [
            Feature("recent_items", str_list(length, LISTING_ID_BYTES), "distinct listings, newest first"),
            Feature("recent_times", int64_list(length), "epoch ms of each listing's latest interaction"),
            Feature("interactions", int64, "interactions counted into the list"),
        ],
        staleness_sla=timedelta(hours=1),
        source=EventSource((InteractionLogged.TYPE,)),
        description="What the user looked at last: seeds retrieval and session-aware ranking.",
    )


def listing_engagement_view(name: str = "listing_engagement") -> FeatureView:
    return FeatureView(
        name,
        "listing_id",
        [
            Feature("views", int64),
            Feature("clicks", int64),
            Feature("ctr", float32, "(clicks + prior * strength) / (views + strength)"),
        ],
        staleness_sla=timedelta(hours=1),
        source=EventSource((InteractionLogged.TYPE,)),
        description="Popularity and click-through of a listing, smoothed towards a prior.",
    )


def velocity_features(windows: Sequence[timedelta] = VELOCITY_WINDOWS) -> list[Feature]:
    labels = [window_label(w) for w in windows]
    return [Feature(f"count_{label}", int64) for label in labels] + [
        Feature(f"amount_{label}", float64, "sum of amounts in minor units") for label in labels
    ]


@dataclass(frozen=True)
class VelocitySpec:
    """Velocity views of one event stream: key kind -> view, and the windows they hold."""

    views: dict[str, FeatureView]
    windows: tuple[timedelta, ...]


def transaction_velocity(
    kinds: Sequence[str] = tuple(TRANSACTION_KEYS), windows: Sequence[timedelta] = VELOCITY_WINDOWS
) -> VelocitySpec:
    """Velocity per key kind of a payment attempt, from the `transactions` table / stream."""
    unknown = sorted(set(kinds) - set(TRANSACTION_KEYS))
    if unknown:
        raise ValueError(f"unknown key kind(s) {unknown}; known: {sorted(TRANSACTION_KEYS)}")
    views = {
        kind: FeatureView(
            f"txn_velocity_{kind}",
            TRANSACTION_KEYS[kind],
            velocity_features(windows),
            staleness_sla=min(windows),
            source=TableSource("transactions", TRANSACTION_KEYS[kind], "timestamp"),
            description=f"Payment attempts per {kind} over sliding windows (as of the key's latest attempt).",
        )
        for kind in kinds
    }
    return VelocitySpec(views, tuple(windows))


def order_velocity(windows: Sequence[timedelta] = VELOCITY_WINDOWS) -> VelocitySpec:
    """Orders per user over sliding windows, from ``OrderPlaced`` (which carries only the user)."""
    view = FeatureView(
        "order_velocity_user",
        "user_id",
        velocity_features(windows),
        staleness_sla=min(windows),
        source=EventSource((OrderPlaced.TYPE,)),
        description="Orders and order value per user over sliding windows.",
    )
    return VelocitySpec({"user": view}, tuple(windows))


def builtin_views() -> FeatureRegistry:
    """A registry holding every view above with default settings."""
    registry = FeatureRegistry([recent_items_view(), listing_engagement_view()])
    for spec in (transaction_velocity(), order_velocity()):
        for view in spec.views.values():
            registry.register(view)
    return registry
