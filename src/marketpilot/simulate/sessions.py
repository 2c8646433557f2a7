"""One simulated day of browsing: sessions -> requests -> slates -> views, clicks, purchases.

Each buyer starts Poisson(activity x weekday factor) sessions a day at times drawn from a
diurnal curve, on one of their devices. A session makes 1 + Poisson(0.25) requests, each
browsing a category chosen by the buyer's intent and answered by the logging policy
(`policy.py`); the buyer reacts per `behaviour.py`. Everything is vectorised over all
sessions of the day; the expensive gathers (taste x factors) run in bounded chunks.

Outputs per day (all numpy, ids still integers):
* interactions: view/click/add_to_cart/purchase rows with session, request and position;
  rating rows (days later, no session);
* impressions (ground truth): every shown (request, position, listing) with its logging
  propensity, true utility and click probability;
* sessions (ground truth): user, device type and id, start, number of requests;
* purchases: what the order process turns into orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketpilot.dataimport.schemas import INTERACTION_EVENTS
from marketpilot.simulate import behaviour
from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.categories import Catalogue
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.identifiers import Counters
from marketpilot.simulate.listings import Listings
from marketpilot.simulate.policy import LoggingPolicy
from marketpilot.simulate.prices import PricePath
from marketpilot.simulate.users import Users

WEEKDAY_ACTIVITY = np.array([0.97, 0.95, 0.96, 0.98, 1.0, 1.06, 1.08])
WEEKDAY_ACTIVITY = WEEKDAY_ACTIVITY / WEEKDAY_ACTIVITY.mean()
HOURLY = np.array([0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.6, 1.2, 1.6, 1.7, 1.8, 2.0,
                   2.3, 2.1, 1.8, 1.7, 1.8, 2.0, 2.4, 2.9, 3.2, 3.0, 2.2, 1.2])
HOURLY = HOURLY / HOURLY.sum()
EXTRA_REQUESTS = 0.25  # mean requests per session beyond the first
REQUEST_GAP_SECONDS = (20, 240)
PREFERRED_DEVICE = 0.8
REQUEST_CHUNK = 50_000
IMPRESSION_CHUNK = 200_000
EVENT = {name: code for code, name in enumerate(INTERACTION_EVENTS)}

Columns = dict[str, np.ndarray]


@dataclass
class DayActivity:
    interactions: Columns
    impressions: Columns
    sessions: Columns
    purchases: Columns


@dataclass(frozen=True)
class World:
    """The state a day of browsing reads (never writes)."""

    config: SimulationConfig
    catalogue: Catalogue
    users: Users
    listings: Listings
    policy: LoggingPolicy
    prices: PricePath


def _segment_cumsum(values: np.ndarray, segment_start: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each True of `segment_start` (values there count as 0)."""
    v = np.where(segment_start, 0.0, values)
    total = np.cumsum(v)
    base = np.maximum.accumulate(np.where(segment_start, total, 0.0))
    return total - base


def _sessions(rng: np.random.Generator, world: World, day: int, counters: Counters) -> Columns:
    config, users = world.config, world.users
    day_start = config.start_epoch + day * 86_400
    weekday = (day_start // 86_400 + 3) % 7
    expected = users.activity.astype(np.float64) * WEEKDAY_ACTIVITY[weekday]
    n_sessions = rng.poisson(expected)
    n_sessions[users.created_at >= day_start + 86_400] = 0
    user = np.repeat(np.arange(len(users), dtype=np.int64), n_sessions)
    n = len(user)
    start = day_start + rng.choice(24, n, p=HOURLY) * 3_600 + rng.integers(0, 3_600, n)
    start = np.maximum(start, users.created_at[user] + 60)
    preferred = users.device_type[user]
    device_type = np.where(rng.random(n) < PREFERRED_DEVICE, preferred,
                           rng.integers(0, len(vocab.DEVICE_TYPES), n)).astype(np.int8)
    order = np.lexsort((user, start))  # sessions numbered in start order
    user, start, device_type, preferred = user[order], start[order], device_type[order], preferred[order]
    return {
        "session": counters.take("session", n), "user": user, "started_at": start.astype(np.int64),
        "device_type": device_type,
        "device": users.device[user, (device_type != preferred).astype(np.int64)],
        "n_requests": 1 + rng.poisson(EXTRA_REQUESTS, n),
    }


def _requests(rng: np.random.Generator, world: World, day: int, sessions: Columns,
              counters: Counters) -> Columns:
    index = np.repeat(np.arange(len(sessions["session"])), sessions["n_requests"])
    first = np.r_[True, index[1:] != index[:-1]] if len(index) else np.zeros(0, bool)
    gaps = rng.integers(*REQUEST_GAP_SECONDS, len(index)).astype(np.float64)
    at = sessions["started_at"][index] + _segment_cumsum(gaps, first).astype(np.int64)
    user = sessions["user"][index]
    epoch_day = (world.config.start_epoch + day * 86_400) // 86_400
    log_season = world.policy.group_log_season(world.catalogue, epoch_day)
    group = np.empty(len(index), dtype=np.int64)
    for lo in range(0, len(index), REQUEST_CHUNK):
        hi = min(len(index), lo + REQUEST_CHUNK)
        p = world.policy.intent(world.users.taste[user[lo:hi]], log_season)
        cdf = np.cumsum(p, axis=1)
        group[lo:hi] = np.minimum((cdf < rng.random(hi - lo)[:, None] * cdf[:, -1:]).sum(axis=1), p.shape[1] - 1)
    return {"request": counters.take("request", len(index)), "session": sessions["session"][index],
            "user": user, "at": at, "group": group}


def _respond(rng: np.random.Generator, world: World, day: int, imp: Columns) -> Columns:
    """True utility and reactions for impressions, computed in bounded chunks."""
    n = len(imp["listing"])
    listings, users, catalogue = world.listings, world.users, world.catalogue
    util = np.empty(n)
    paid = np.empty(n, dtype=np.int64)
    regular = np.empty(n, dtype=np.int64)
    for lo in range(0, n, IMPRESSION_CHUNK):
        hi = min(n, lo + IMPRESSION_CHUNK)
        item, user = imp["listing"][lo:hi], imp["user"][lo:hi]
        paid[lo:hi], regular[lo:hi], _ = world.prices.price(item, np.full(hi - lo, day))
        leaf = listings.leaf[item]
        ref = catalogue.ref_price_major[leaf] * world.config.minor_per_major
        util[lo:hi] = behaviour.utility(users.taste[user], listings.factors[item], listings.quality[item],
                                        users.price_sensitivity[user], np.log(paid[lo:hi] / ref))
    p_click = behaviour.click_probability(util, imp["position"])
    click = rng.random(n) < p_click
    cart = click & (rng.random(n) < behaviour.cart_probability(util))
    elasticity = catalogue.elasticity[listings.leaf[imp["listing"]]]
    buy = cart & (rng.random(n) < behaviour.purchase_probability(util, paid / regular, elasticity))
    return {"utility": util, "click_probability": p_click, "click": click, "cart": cart, "buy": buy,
            "paid": paid}


def simulate_day(rng: np.random.Generator, world: World, day: int, counters: Counters) -> DayActivity:
    sessions = _sessions(rng, world, day, counters)
    requests = _requests(rng, world, day, sessions, counters)
    listing, propensity = world.policy.slates(rng, requests["group"])
    filled = listing >= 0
    req_index = np.nonzero(filled)[0]
    position = np.nonzero(filled)[1]
    imp = {
        "request": requests["request"][req_index], "session": requests["session"][req_index],
        "user": requests["user"][req_index], "listing": listing[filled], "position": position.astype(np.int64),
        "group": requests["group"][req_index], "propensity": propensity[filled],
        "at": requests["at"][req_index],
    }
    reaction = _respond(rng, world, day, imp)
    n = len(imp["listing"])
    click_at = imp["at"] + 3 + 2 * imp["position"] + rng.integers(0, 25, n)
    cart_at = click_at + rng.integers(15, 180, n)
    buy_at = cart_at + rng.integers(30, 900, n)

    # a session buys a listing at most once
    buy = reaction["buy"]
    bought = np.flatnonzero(buy)
    _, first = np.unique(np.stack([imp["session"][bought], imp["listing"][bought]]), axis=1, return_index=True)
    buy = np.zeros(n, dtype=bool)
    buy[bought[np.sort(first)]] = True
    quantity = 1 + (rng.random(n) < 0.1) + (rng.random(n) < 0.03)

    rated = buy & (rng.random(n) < behaviour.RATING_PROBABILITY)
    low, high = behaviour.RATING_DELAY_DAYS
    rated_at = buy_at + (rng.uniform(low, high, n) * 86_400).astype(np.int64)
    stars = behaviour.rating(rng, world.listings.quality[imp["listing"]].astype(np.float64), reaction["utility"])

    parts = [
        (np.ones(n, bool), "view", imp["at"], np.nan),
        (reaction["click"], "click", click_at, np.nan),
        (reaction["cart"], "add_to_cart", cart_at, np.nan),
        (buy, "purchase", buy_at, quantity),
        (rated, "rating", rated_at, stars),
    ]
    inter: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("user", "listing", "event", "value", "timestamp", "session",
                                           "position", "request")}
    for mask, event, at, value in parts:
        m = int(mask.sum())
        in_session = event != "rating"
        inter["user"].append(imp["user"][mask])
        inter["listing"].append(imp["listing"][mask])
        inter["event"].append(np.full(m, EVENT[event], dtype=np.int8))
        inter["value"].append(np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))[mask])
        inter["timestamp"].append(at[mask].astype(np.int64))
        inter["session"].append(imp["session"][mask] if in_session else np.full(m, -1, np.int64))
        inter["position"].append(imp["position"][mask] if in_session else np.full(m, -1, np.int64))
        inter["request"].append(imp["request"][mask] if in_session else np.full(m, -1, np.int64))
    interactions = {k: np.concatenate(v) for k, v in inter.items()}

    # sessions of a day are numbered consecutively, so a session's row is its number - the first
    session_offset = sessions["session"][0] if len(sessions["session"]) else 0
    purchases = {
        "user": imp["user"][buy], "listing": imp["listing"][buy], "session": imp["session"][buy],
        "at": buy_at[buy].astype(np.int64), "quantity": quantity[buy].astype(np.int64),
        "unit_price": reaction["paid"][buy],
        "device": sessions["device"][imp["session"][buy] - session_offset],
    }
    impressions = {
        "request": imp["request"], "session": imp["session"], "user": imp["user"], "listing": imp["listing"],
        "position": imp["position"], "group": imp["group"], "propensity": imp["propensity"],
        "utility": reaction["utility"], "click_probability": reaction["click_probability"],
        "clicked": reaction["click"], "at": imp["at"], "price": reaction["paid"],
    }
    return DayActivity(interactions=interactions, impressions=impressions, sessions=sessions, purchases=purchases)
