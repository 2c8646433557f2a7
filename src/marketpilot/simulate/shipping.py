"""Shipments: one parcel per order (orders are per seller), timed by the seller and the lane.

At checkout the buyer is promised a delivery date: the seller's mean handling time plus the
lane's promised transit days, rounded up to 20:00 UTC. The parcel is handed over after a
random handling time (capped well before the promise), and arrives on time with exactly the
lane's true probability `Geography.on_time[carrier, origin, destination]` - uniformly between
hand-over and promise - or late by a Gamma-distributed delay around the lane's mean delay.
So the empirical on-time rate of a lane in shipments.csv estimates its true value.

Status is what an observer sees at the end of the window ('now'): parcels not yet handed
over are `created`, those on the way `in_transit`, a few are `lost` or `returned`.
Order status follows from its parcels (or from the payment, for failed orders).
"""

from __future__ import annotations

import numpy as np

from marketpilot.simulate.commerce import ORDER_STATUSES, OUTCOME_CANCELLED, OUTCOME_FAILED, schema_choices
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import Counters, entity_ids
from marketpilot.simulate.output import NULL_TIME, take
from marketpilot.simulate.sellers import Sellers

Columns = dict[str, np.ndarray]

SHIPMENT_STATUSES = schema_choices("shipments", "status")
LOST_RATE = 0.005
RETURN_RATE = 0.02
PROMISE_HOUR = 20


def _promise(created: np.ndarray, days: np.ndarray) -> np.ndarray:
    """created + days, rounded up to PROMISE_HOUR on that day."""
    target = created + (days * 86_400).astype(np.int64)
    day_start = target // 86_400 * 86_400
    at = day_start + PROMISE_HOUR * 3_600
    return np.where(at >= target, at, at + 86_400)


def ship(rng: np.random.Generator, lines: Columns, sellers: Sellers, geo: Geography, now: int,
         counters: Counters) -> tuple[np.ndarray, Columns]:
    """(order status index per line, shipment columns) for order lines sorted by time."""
    # parcels numbered by first appearance of their (order, seller) among the lines
    key = lines["order"] * (int(lines["seller"].max(initial=0)) + 1) + lines["seller"]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    appearance = np.argsort(first, kind="stable")
    rank = np.empty_like(appearance)
    rank[appearance] = np.arange(len(appearance))
    parcel_of_line = rank[inverse.reshape(-1)]
    first = first[appearance]
    n = len(first)

    outcome = lines["outcome"][first]
    seller = lines["seller"][first]
    created = lines["created_at"][first]
    origin = sellers.region[seller].astype(np.int64)
    dest = lines["shipping_region"][first]
    cdf = np.cumsum(geo.carrier_share[origin], axis=1)
    carrier = np.minimum((cdf < rng.random(n)[:, None]).sum(axis=1), len(geo.carriers) - 1)
    promise_days = sellers.handling_days[seller] + geo.promised_days[carrier, origin, dest]
    promised = _promise(created, promise_days)
    window = promised - created
    handling = np.minimum(rng.gamma(2.0, sellers.handling_days[seller] / 2.0) * 86_400, 0.6 * window)
    shipped = created + handling.astype(np.int64)
    on_time = rng.random(n) < geo.on_time[carrier, origin, dest]
    early = shipped + (rng.uniform(0.2, 1.0, n) * (promised - shipped)).astype(np.int64)
    late = promised + 1_800 + (rng.gamma(2.0, geo.mean_delay_days[carrier, origin, dest] / 2.0) * 86_400
                               ).astype(np.int64)
    delivered = np.where(on_time, early, late)
    lost = rng.random(n) < LOST_RATE
    returned = rng.random(n) < RETURN_RATE

    status = np.full(n, SHIPMENT_STATUSES.index("delivered"))
    status[returned] = SHIPMENT_STATUSES.index("returned")
    status[delivered > now] = SHIPMENT_STATUSES.index("in_transit")
    status[lost] = SHIPMENT_STATUSES.index("lost")
    status[shipped > now] = SHIPMENT_STATUSES.index("created")
    status[outcome == OUTCOME_CANCELLED] = SHIPMENT_STATUSES.index("cancelled")
    not_shipped = np.isin(status, [SHIPMENT_STATUSES.index("created"), SHIPMENT_STATUSES.index("cancelled")])
    not_delivered = not_shipped | np.isin(status, [SHIPMENT_STATUSES.index("in_transit"),
                                                   SHIPMENT_STATUSES.index("lost")])
    keep = outcome != OUTCOME_FAILED  # a declined payment ships nothing
    shipments = {
        "shipment": counters.take("shipment", int(keep.sum())),
        "order": lines["order"][first][keep], "carrier": carrier[keep], "origin": origin[keep], "destination":
        dest[keep], "status": status[keep], "shipped_at": np.where(not_shipped, NULL_TIME, shipped)[keep],
        "promised_at": np.where(status == SHIPMENT_STATUSES.index("cancelled"), NULL_TIME, promised)[keep],
        "delivered_at": np.where(not_delivered, NULL_TIME, delivered)[keep],
    }
    return _order_status(lines, parcel_of_line, status), shipments


def _order_status(lines: Columns, parcel_of_line: np.ndarray, parcel_status: np.ndarray) -> np.ndarray:
    """One status per order, repeated on each of its lines."""
    s = SHIPMENT_STATUSES
    rank = np.zeros(len(s), np.int64)  # the least advanced parcel decides
    rank[[s.index("in_transit"), s.index("lost")]] = 1
    rank[[s.index("delivered"), s.index("returned")]] = 2
    line_rank = rank[parcel_status[parcel_of_line]]
    orders, order_of_line = np.unique(lines["order"], return_inverse=True)
    worst = np.full(len(orders), 2, np.int64)
    np.minimum.at(worst, order_of_line, line_rank)
    status = np.array([ORDER_STATUSES.index(x) for x in ("paid", "shipped", "delivered")])[worst[order_of_line]]
    status = np.where(lines["outcome"] == OUTCOME_CANCELLED, ORDER_STATUSES.index("cancelled"), status)
    return np.where(lines["outcome"] == OUTCOME_FAILED, ORDER_STATUSES.index("failed"), status)


def shipment_rows(shipments: Columns, geo: Geography) -> dict[str, object]:
    return {
        "shipment_id": entity_ids("shipment", shipments["shipment"]),
        "order_id": entity_ids("order", shipments["order"]),
        "carrier": take(geo.carriers, shipments["carrier"]),
        "origin_region": take(geo.codes, shipments["origin"]),
        "destination_region": take(geo.codes, shipments["destination"]),
        "status": take(SHIPMENT_STATUSES, shipments["status"]),
        "shipped_at": shipments["shipped_at"],
        "promised_at": shipments["promised_at"],
        "delivered_at": shipments["delivered_at"],
    }
