"""Fraud: injected rings and isolated patterns, with the truth about every fraudulent payment.

Three patterns, each leaving the traces real ones leave:
* ring - 3-8 freshly created accounts sharing 1-2 devices, 2-4 stolen cards and 1-3 IPs,
  buying expensive listings in a burst of minutes to hours, usually shipping to a region
  other than where their IPs are;
* account_takeover - an established buyer's account used from a new device and a foreign
  IP, with the buyer's saved card, for an expensive order shipped elsewhere;
* card_testing - a new account trying 5-12 different cards with small amounts within
  minutes, without orders.

Volume follows the legitimate traffic: each day adds fraud_rate / (1 - fraud_rate) times
that day's legitimate transactions to a budget; the next incident (pattern and size drawn
in advance) happens once the budget covers half of it (the rest is owed), so the overall
rate converges to `fraud_rate` and pattern shares to `PATTERN_SHARE` (by transactions).
The first three incidents are a small ring, a card test and a takeover, so even short runs
show each pattern. Fraudsters use accounts from the reserved
pool in `users.py`; their creation time (and a ring's home region) is set here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.commerce import EMAIL_DOMAINS, OUTCOME_FAILED, OUTCOME_NORMAL, PATTERNS
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import Counters
from marketpilot.simulate.listings import Listings
from marketpilot.simulate.prices import PricePath
from marketpilot.simulate.users import IDENTIFIER_SPACE, Users, random_ips

Columns = dict[str, np.ndarray]

PATTERN_SHARE = {"ring": 0.5, "account_takeover": 0.2, "card_testing": 0.3}
MEAN_SIZE = {"ring": 16.5, "account_takeover": 1.5, "card_testing": 8.5}
DECLINED = {"ring": 0.35, "account_takeover": 0.3}
FIRST_PATTERNS = ("ring", "card_testing", "account_takeover")
EXPENSIVE_SHARE = 0.1  # fraudsters buy from the most expensive 10 % of shown listings


@dataclass
class Incident:
    pattern: str
    size: int
    members: int = 0


@dataclass
class FraudProcess:
    config: SimulationConfig
    users: Users
    listings: Listings
    prices: PricePath
    geo: Geography
    pool: list[int]
    expensive: np.ndarray
    established: np.ndarray
    budget: float = 0.0
    next_incident: Incident | None = None
    rings: list[dict[str, Any]] = field(default_factory=list)
    truth: list[Columns] = field(default_factory=list)
    incidents: int = 0
    drawn: int = 0

    @classmethod
    def create(cls, rng: np.random.Generator, config: SimulationConfig, users: Users, listings: Listings,
               prices: PricePath, geo: Geography) -> FraudProcess:
        shown = np.flatnonzero(listings.shown)
        price = listings.base_price_minor[shown]
        cut = np.quantile(price, 1 - EXPENSIVE_SHARE) if len(shown) else 0
        established = np.flatnonzero(~users.fraud_pool & (users.created_at < config.start_epoch - 90 * 86_400))
        pool = [int(u) for u in rng.permutation(np.flatnonzero(users.fraud_pool))]
        return cls(config, users, listings, prices, geo, pool, shown[price >= cut], established)

    def _draw_incident(self, rng: np.random.Generator) -> Incident:
        self.drawn += 1
        return self._draw(rng)

    def _draw(self, rng: np.random.Generator) -> Incident:
        if self.drawn <= len(FIRST_PATTERNS):  # each pattern once first, so short runs show all
            pattern = FIRST_PATTERNS[self.drawn - 1]
        else:
            names = list(PATTERN_SHARE)
            weight = np.array([PATTERN_SHARE[p] / MEAN_SIZE[p] for p in names])
            pattern = names[rng.choice(len(names), p=weight / weight.sum())]
        if pattern == "ring":
            first = not self.rings  # the first ring is small, so that even short runs have one
            members = min(len(self.pool), int(rng.integers(3, 5 if first else 9)))
            if members < 3:
                pattern = "account_takeover"
            else:
                return Incident("ring", members * (2 if first else int(rng.integers(2, 5))), members)
        if pattern == "card_testing" and not self.pool:
            pattern = "account_takeover"
        if pattern == "card_testing":
            return Incident("card_testing", int(rng.integers(5, 13)))
        return Incident("account_takeover", int(rng.integers(1, 3)))

    def day(self, rng: np.random.Generator, day: int, legit_transactions: int,
            counters: Counters) -> tuple[list[Columns], list[Columns]]:
        """Fraudulent (order lines, transactions) of one day."""
        rate = self.config.fraud_rate
        if rate == 0 or len(self.expensive) == 0:
            return [], []
        self.budget += rate / (1 - rate) * legit_transactions
        lines: list[Columns] = []
        txns: list[Columns] = []
        while True:
            if self.next_incident is None:
                self.next_incident = self._draw_incident(rng)
            incident = self.next_incident
            if incident.size > self.budget + incident.size / 2 or (
                    incident.pattern == "account_takeover" and not len(self.established)):
                break
            self.budget -= incident.size
            self.next_incident = None
            day_start = self.config.start_epoch + day * 86_400
            start = day_start + int(rng.integers(0, 20 * 3_600))
            make = {"ring": self._ring, "account_takeover": self._takeover, "card_testing": self._card_testing}
            new_lines, new_txns = make[incident.pattern](rng, incident, start, day, counters)
            lines.append(new_lines)
            txns.append(new_txns)
            self.truth.append({k: new_txns[k] for k in ("transaction", "user", "pattern", "incident", "ring")})
        return lines, txns

    def _orders(self, rng: np.random.Generator, pattern: str, user: np.ndarray, at: np.ndarray, day: int,
                ship_region: np.ndarray, counters: Counters) -> tuple[Columns, np.ndarray, np.ndarray]:
        n = len(user)
        listing = self.expensive[rng.integers(0, len(self.expensive), n)]
        quantity = 1 + rng.binomial(2, 0.35, n)
        paid, _, _ = self.prices.price(listing, np.full(n, day))
        order = counters.take("order", n)
        declined = rng.random(n) < DECLINED[pattern]
        lines = {
            "order": order, "user": user, "seller": self.listings.seller[listing].astype(np.int64),
            "listing": listing, "quantity": quantity.astype(np.int64), "unit_price": paid,
            "shipping_region": ship_region, "created_at": at,
            "outcome": np.where(declined, OUTCOME_FAILED, OUTCOME_NORMAL).astype(np.int8),
        }
        return lines, order, (quantity * paid).astype(np.int64)

    def _transactions(self, counters: Counters, pattern: str, incident: int, ring: int, **cols: np.ndarray) -> Columns:
        n = len(cols["user"])
        txns = {"transaction": counters.take("transaction", n), **cols,
                "label": np.ones(n, np.int8), "pattern": np.full(n, PATTERNS.index(pattern), np.int8),
                "incident": np.full(n, incident, np.int64), "ring": np.full(n, ring, np.int64)}
        return txns

    def _ring(self, rng: np.random.Generator, incident: Incident, start: int, day: int,
              counters: Counters) -> tuple[Columns, Columns]:
        members = np.array([self.pool.pop() for _ in range(incident.members)], dtype=np.int64)
        ring_no = int(counters.take("ring", 1)[0])
        incident_no = self._next_incident_no()
        ip_region = int(rng.integers(0, self.geo.n_regions))
        ship_choice = rng.integers(0, self.geo.n_regions - 1)
        ship = int(ship_choice + (ship_choice >= ip_region)) if rng.random() < 0.8 else ip_region
        devices = rng.integers(0, IDENTIFIER_SPACE, int(rng.integers(1, 3)))
        cards = rng.integers(0, IDENTIFIER_SPACE, int(rng.integers(2, 5)))
        ips = random_ips(rng, self.geo, np.full(int(rng.integers(1, 4)), ip_region))
        domain = (len(vocab.EMAIL_DOMAINS) + int(rng.integers(0, len(vocab.DISPOSABLE_EMAIL_DOMAINS)))
                  if rng.random() < 0.6 else int(rng.integers(0, len(vocab.EMAIL_DOMAINS))))
        n = incident.size
        user = members[np.arange(n) % len(members)]
        at = start + np.cumsum(rng.exponential(8 * 60, n)).astype(np.int64)
        first_seen = np.array([at[user == m].min() for m in members])
        self.users.created_at[members] = first_seen - rng.uniform(3_600, 5 * 86_400, len(members)).astype(np.int64)
        self.users.region[members] = ip_region
        lines, order, amount = self._orders(rng, "ring", user, at, day, np.full(n, ship), counters)
        txns = self._transactions(
            counters, "ring", incident_no, ring_no, user=user, order=order, amount=amount,
            instrument=cards[rng.integers(0, len(cards), n)], device=devices[rng.integers(0, len(devices), n)],
            ip=ips[rng.integers(0, len(ips), n)], email_domain=np.full(n, domain, np.int64),
            ip_region=np.full(n, ip_region, np.int64), shipping_region=np.full(n, ship, np.int64),
            timestamp=at + rng.integers(1, 20, n),
        )
        self.rings.append({
            "ring": ring_no, "incident": incident_no, "members": members.tolist(), "devices": devices.tolist(),
            "instruments": cards.tolist(), "ips": ips.tolist(), "email_domain": EMAIL_DOMAINS[domain],
            "ip_region": self.geo.codes[ip_region], "shipping_region": self.geo.codes[ship],
            "burst_start": int(at.min()), "burst_end": int(txns["timestamp"].max()),
            "transactions": txns["transaction"].tolist(), "orders": order.tolist(),
        })
        return lines, txns

    def _takeover(self, rng: np.random.Generator, incident: Incident, start: int, day: int,
                  counters: Counters) -> tuple[Columns, Columns]:
        victim = int(self.established[rng.integers(0, len(self.established))])
        home = int(self.users.region[victim])
        foreign = int(rng.integers(0, self.geo.n_regions - 1))
        foreign += foreign >= home
        n = incident.size
        user = np.full(n, victim, np.int64)
        at = start + np.cumsum(rng.integers(60, 1_800, n)).astype(np.int64)
        lines, order, amount = self._orders(rng, "account_takeover", user, at, day, np.full(n, foreign), counters)
        txns = self._transactions(
            counters, "account_takeover", self._next_incident_no(), -1, user=user, order=order, amount=amount,
            instrument=np.full(n, self.users.instrument[victim, 0]),
            device=np.full(n, rng.integers(0, IDENTIFIER_SPACE)),
            ip=random_ips(rng, self.geo, np.full(n, foreign)),
            email_domain=np.full(n, int(self.users.email_domain[victim]), np.int64),
            ip_region=np.full(n, foreign, np.int64), shipping_region=np.full(n, foreign, np.int64),
            timestamp=at + rng.integers(1, 20, n),
        )
        return lines, txns

    def _card_testing(self, rng: np.random.Generator, incident: Incident, start: int, day: int,
                      counters: Counters) -> tuple[Columns, Columns]:
        account = self.pool.pop()
        n = incident.size
        at = start + np.cumsum(rng.integers(5, 90, n)).astype(np.int64)
        self.users.created_at[account] = start - int(rng.integers(600, 2 * 86_400))
        region = int(self.users.region[account])
        scale = self.config.minor_per_major / 100
        txns = self._transactions(
            counters, "card_testing", self._next_incident_no(), -1, user=np.full(n, account, np.int64),
            order=np.full(n, -1, np.int64),
            amount=np.maximum(1, np.round(rng.integers(50, 500, n) * scale)).astype(np.int64),
            instrument=rng.integers(0, IDENTIFIER_SPACE, n), device=np.full(n, rng.integers(0, IDENTIFIER_SPACE)),
            ip=np.full(n, random_ips(rng, self.geo, np.array([region]))[0]),
            email_domain=np.full(
                n, len(vocab.EMAIL_DOMAINS) + int(rng.integers(0, len(vocab.DISPOSABLE_EMAIL_DOMAINS))), np.int64),
            ip_region=np.full(n, region, np.int64), shipping_region=np.full(n, -1, np.int64), timestamp=at,
        )
        return {}, txns

    def _next_incident_no(self) -> int:
        self.incidents += 1
        return self.incidents - 1
