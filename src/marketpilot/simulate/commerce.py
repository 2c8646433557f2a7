"""The order process: purchases become orders, orders become payment transactions.

The purchases of a session are checked out together, split into one order per seller (one
row per listing in orders.csv; an order's rows share its header columns and its seller). Every order is paid by one transaction carrying the
identity signals fraud models use: instrument fingerprint, device, IP and its region, email
domain, shipping region. Legitimate buyers are not perfectly tidy on purpose - they travel
(IP region differs from home), send gifts (shipping region differs), use their second card
and device, and some accounts are new - so that none of these signals alone means fraud.

Orders and transactions are plain numpy columns until they are written (`order_rows`,
`transaction_rows`); fraud.py produces columns of the same shape.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from marketpilot.dataimport.schemas import SCHEMAS
from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import Counters, entity_ids, ip_strings
from marketpilot.simulate.listings import Listings
from marketpilot.simulate.output import take
from marketpilot.simulate.users import Users, random_ips

Columns = dict[str, np.ndarray]



def schema_choices(kind: str, column: str) -> tuple[str, ...]:
    """The allowed values of a column, straight from the import schema."""
    for col in SCHEMAS[kind].columns:
        if col.name == column and col.choices is not None:
            return col.choices
    raise KeyError(f"{kind}.{column} has no choices")


ORDER_STATUSES = schema_choices("orders", "status")
EMAIL_DOMAINS = vocab.EMAIL_DOMAINS + vocab.DISPOSABLE_EMAIL_DOMAINS
PATTERNS = ("legit", "ring", "account_takeover", "card_testing")
OUTCOME_NORMAL, OUTCOME_CANCELLED, OUTCOME_FAILED = 0, 1, 2
CANCEL_RATE = 0.02
GIFT_RATE = 0.04
TRAVEL_RATE = 0.03
MOBILE_IP_RATE = 0.2
SECOND_CARD_RATE = 0.15


def orders_from_purchases(rng: np.random.Generator, purchases: Columns, users: Users, listings: Listings,
                          geo: Geography, counters: Counters) -> tuple[Columns, Columns]:
    """(order lines, transactions) for one day's purchases: one order per session and seller."""
    seller = listings.seller[purchases["listing"]].astype(np.int64)
    basket_order = np.lexsort((purchases["at"], seller, purchases["session"]))
    p = {k: v[basket_order] for k, v in purchases.items()}
    seller = seller[basket_order]
    new_basket = np.ones(len(seller), dtype=bool)
    new_basket[1:] = (np.diff(p["session"]) != 0) | (np.diff(seller) != 0)
    first = np.flatnonzero(new_basket)
    line_order = np.cumsum(new_basket) - 1
    n_orders = len(first)
    order_no = counters.take("order", n_orders)
    checkout = (np.maximum.reduceat(p["at"], first) if n_orders else np.zeros(0, np.int64)) + rng.integers(
        5, 60, n_orders)
    user = p["user"][first]
    home = users.region[user].astype(np.int64)
    gift = rng.random(n_orders) < GIFT_RATE
    ship_region = np.where(gift, rng.integers(0, geo.n_regions, n_orders), home)
    outcome = np.where(rng.random(n_orders) < CANCEL_RATE, OUTCOME_CANCELLED, OUTCOME_NORMAL)
    lines = {
        "order": order_no[line_order], "user": p["user"], "seller": seller,
        "listing": p["listing"], "quantity": p["quantity"], "unit_price": p["unit_price"],
        "shipping_region": ship_region[line_order], "created_at": checkout[line_order].astype(np.int64),
        "outcome": outcome[line_order].astype(np.int8),
    }
    amount = np.bincount(line_order, weights=p["quantity"] * p["unit_price"], minlength=n_orders)

    travelling = rng.random(n_orders) < TRAVEL_RATE
    ip_region = np.where(travelling, rng.integers(0, geo.n_regions, n_orders), home)
    mobile = travelling | (rng.random(n_orders) < MOBILE_IP_RATE)
    ip = np.where(mobile, random_ips(rng, geo, ip_region), users.home_ip[user])
    card = (rng.random(n_orders) < SECOND_CARD_RATE).astype(np.int64)
    txns = {
        "transaction": counters.take("transaction", n_orders), "user": user, "order": order_no,
        "amount": np.round(amount).astype(np.int64), "instrument": users.instrument[user, card],
        "device": p["device"][first], "ip": ip, "email_domain": users.email_domain[user].astype(np.int64),
        "ip_region": ip_region, "shipping_region": ship_region,
        "timestamp": (checkout + rng.integers(1, 20, n_orders)).astype(np.int64),
        "label": np.zeros(n_orders, np.int8), "pattern": np.zeros(n_orders, np.int8),
        "incident": np.full(n_orders, -1, np.int64), "ring": np.full(n_orders, -1, np.int64),
    }
    return lines, txns


def order_rows(config: SimulationConfig, lines: Columns, status: np.ndarray, geo: Geography) -> dict[str, object]:
    n = len(lines["order"])
    return {
        "order_id": entity_ids("order", lines["order"]),
        "user_id": entity_ids("user", lines["user"]),
        "seller_id": entity_ids("seller", lines["seller"]),
        "listing_id": entity_ids("listing", lines["listing"]),
        "quantity": lines["quantity"],
        "unit_price_minor": lines["unit_price"],
        "currency": pa.repeat(config.currency, n),
        "shipping_region": take(geo.codes, lines["shipping_region"]),
        "status": take(ORDER_STATUSES, status),
        "created_at": lines["created_at"],
    }


def transaction_rows(config: SimulationConfig, txns: Columns, geo: Geography) -> dict[str, object]:
    n = len(txns["transaction"])
    return {
        "transaction_id": entity_ids("transaction", txns["transaction"]),
        "user_id": entity_ids("user", txns["user"]),
        "order_id": entity_ids("order", txns["order"]),
        "amount_minor": txns["amount"],
        "currency": pa.repeat(config.currency, n),
        "instrument_fingerprint": entity_ids("instrument", txns["instrument"]),
        "device_id": entity_ids("device", txns["device"]),
        "ip": ip_strings(txns["ip"]),
        "email_domain": take(EMAIL_DOMAINS, txns["email_domain"]),
        "ip_region": take(geo.codes, txns["ip_region"]),
        "shipping_region": take(geo.codes, txns["shipping_region"]),
        "timestamp": txns["timestamp"],
        "label": txns["label"].astype(np.int64),
    }
