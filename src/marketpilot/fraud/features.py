"""Fraud features of one payment attempt, computed from everything seen strictly before it.

:class:`FeatureState` is the online feature state of the fraud capability. The same object
serves requests (``vector`` then ``observe``) and builds training sets by replaying history
in event-time order, so every training row sees exactly what a live request at that moment
would have seen: point-in-time correct by construction, with one code path and no
train/serve skew. Velocity windows are the feature store's
:class:`~marketpilot.platform.features.WindowedCounter` (event-time buckets, the same
arithmetic as the ``txn_velocity_*`` views); ring signals come from
:class:`~marketpilot.fraud.rings.AccountGraph`.

Confirmed labels (imports, analyst reviews) arrive late in reality (chargebacks take days),
so :meth:`FeatureState.label` folds a label into the ``*_fraud_seen`` features only once
`label_delay` has passed after the transaction, in replay and online alike.

==========================  =============================================================
log_amount                  ``log1p`` of the amount in major units
amount_vs_user              log amount minus the user's mean log amount (NaN: no history)
amount_z_user               the same in the user's standard deviations (floor 0.25)
user_prior_txns             the user's earlier payment attempts
account_age_days            since the account was created (NaN: unknown)
hour                        UTC hour of day
{kind}_count_{1h,24h}       attempts by the same user / instrument / device / IP / email
{kind}_amount_24h           domain in the window (``log1p`` of the summed amount)
ip_ship_mismatch            IP region differs from the shipping region (NaN: unknown)
ip_home_mismatch            IP region differs from the user's home region
new_instrument, new_device  first use of this card / device by this user
{kind}_accounts             distinct accounts seen on this instrument / device / IP
ring_accounts               accounts in the user's connected component (shared devices
                            or instruments), the user included
ring_new_accounts           accounts in it created in the last 7 days
rep_{kind}                  the IP / device / email domain / instrument is on a reputation list
{kind}_fraud_seen           confirmed frauds (label delay honoured) on this instrument,
                            device, IP; for the email domain their smoothed share
==========================  =============================================================
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from marketpilot.domain.entities import CURRENCY_EXPONENT
from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.rings import AccountGraph
from marketpilot.platform.features import WindowedCounter, to_ms

__all__ = [
    "FEATURES", "KEY_KINDS", "REPUTATION_KINDS", "FeatureState", "Observed", "fill_request_features",
    "major_amount", "request_keys",
]

KEY_KINDS = ("user", "instrument", "device", "ip", "email_domain")
REPUTATION_KINDS = ("ip", "device", "email_domain", "instrument")
WINDOWS = (timedelta(hours=1), timedelta(hours=24))
NEW_ACCOUNT = 7 * 86_400_000  # ms: "new" for ring_new_accounts
DEFAULT_LABEL_DELAY = timedelta(days=3)
DOMAIN_PRIOR = 20.0  # pseudo-transactions shrinking a domain's fraud share towards zero

FEATURES: tuple[str, ...] = (
    "log_amount", "amount_vs_user", "amount_z_user", "user_prior_txns", "account_age_days", "hour",
    *(f"{k}_{m}" for k in KEY_KINDS for m in ("count_1h", "count_24h", "amount_24h")),
    "ip_ship_mismatch", "ip_home_mismatch", "new_instrument", "new_device",
    "instrument_accounts", "device_accounts", "ip_accounts", "ring_accounts", "ring_new_accounts",
    *(f"rep_{k}" for k in REPUTATION_KINDS),
    "instrument_fraud_seen", "device_fraud_seen", "ip_fraud_seen", "email_domain_fraud_share",
)
INDEX = {name: i for i, name in enumerate(FEATURES)}
_IP_SHIP = INDEX["ip_ship_mismatch"]


@dataclass(frozen=True, slots=True)
class Observed:
    """What the state remembers of one attempt, to fold its label in later."""

    ts_ms: int
    keys: Mapping[str, str]


def major_amount(amount_minor: int, currency: str) -> float:
    return amount_minor / 10 ** CURRENCY_EXPONENT.get(currency, 2)


@dataclass
class _UserHistory:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    instruments: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


class FeatureState:
    """Online fraud features (see the module docstring). Not thread-safe: the service
    guards it with a lock."""

    def __init__(self, *, label_delay: timedelta = DEFAULT_LABEL_DELAY) -> None:
        self.velocity = {kind: WindowedCounter(WINDOWS) for kind in KEY_KINDS}
        self.users: dict[str, _UserHistory] = defaultdict(_UserHistory)
        self.accounts_on: dict[str, dict[str, set[str]]] = {k: defaultdict(set) for k in ("instrument", "device", "ip")}
        self.graph = AccountGraph()
        self.reputation: dict[str, set[str]] = {k: set() for k in REPUTATION_KINDS}
        self.fraud_seen: dict[str, dict[str, int]] = {k: defaultdict(int) for k in ("instrument", "device", "ip",
                                                                                     "email_domain")}
        self.domain_txns: dict[str, int] = defaultdict(int)
        self.created_at: dict[str, int] = {}  # user -> account creation (ms)
        self.home_region: dict[str, str] = {}
        self.label_delay_ms = int(label_delay.total_seconds() * 1000)
        self._pending: list[tuple[int, int, dict[str, str]]] = []  # (label known at ms, seq, keys): a heap
        self.observed: dict[str, Observed] = {}

    # -- reference data -------------------------------------------------------------------

    def add_users(self, rows: Iterable[tuple[str, str | None, datetime | None]]) -> None:
        """Known accounts: (user id, home region, creation time)."""
        for user, region, created in rows:
            if region:
                self.home_region[user] = region
            if created is not None:
                self.created_at[user] = to_ms(created)

    def add_reputation(self, kind: str, values: Iterable[str]) -> int:
        if kind not in self.reputation:
            raise ValueError(f"unknown reputation list {kind!r}; known: {', '.join(REPUTATION_KINDS)}")
        before = len(self.reputation[kind])
        self.reputation[kind].update(v for v in values if v)
        return len(self.reputation[kind]) - before

    # -- the request path -------------------------------------------------------------------

    def vector(self, r: FraudRequest, out: np.ndarray | None = None) -> np.ndarray:
        """Features of `r` from what was observed before it (does not change the state)."""
        x = np.full(len(FEATURES), np.nan) if out is None else out
        at = to_ms(r.at())
        self._release_labels(at)
        keys = request_keys(r)
        history = self.users.get(r.user_id)
        fill_request_features(x, r, at, history.n if history else 0, history.mean if history else 0.0,
                              history.std if history else 0.0, self.created_at.get(r.user_id),
                              self.home_region.get(r.user_id))
        j = 6
        for kind in KEY_KINDS:
            key = keys.get(kind)
            if key is None:
                x[j:j + 3] = np.nan
            else:
                counts, sums = self.velocity[kind].totals(key, at)
                x[j], x[j + 1], x[j + 2] = counts[0], counts[1], math.log1p(sums[1])
            j += 3
        x[j + 2] = float(r.instrument_fingerprint not in history.instruments) if history and r.instrument_fingerprint \
            else (1.0 if r.instrument_fingerprint else np.nan)
        x[j + 3] = float(r.device_id not in history.devices) if history and r.device_id \
            else (1.0 if r.device_id else np.nan)
        j += 4
        for kind in ("instrument", "device", "ip"):
            key = keys.get(kind)
            if key is None:
                x[j] = np.nan
            else:
                users = self.accounts_on[kind].get(key)
                x[j] = len(users | {r.user_id}) if users else 1.0
            j += 1
        links = [keys[k] for k in ("instrument", "device") if k in keys]
        members = self.graph.members_if_linked(r.user_id, links)
        x[j] = len(members)
        x[j + 1] = sum(1 for u in members if at - self.created_at.get(u, -10**15) < NEW_ACCOUNT)
        j += 2
        for kind in REPUTATION_KINDS:
            key = keys.get(kind)
            x[j] = float(key in self.reputation[kind]) if key is not None else np.nan
            j += 1
        for kind in ("instrument", "device", "ip"):
            key = keys.get(kind)
            x[j] = float(self.fraud_seen[kind].get(key, 0)) if key is not None else np.nan
            j += 1
        domain = keys.get("email_domain")
        x[j] = (self.fraud_seen["email_domain"].get(domain, 0) / (self.domain_txns.get(domain, 0) + DOMAIN_PRIOR)
                if domain is not None else np.nan)
        return x

    def vector_then_observe(self, r: FraudRequest, out: np.ndarray | None = None) -> np.ndarray:
        """The request path: `r`'s features as of before it, then `r` folded in."""
        x = self.vector(r, out)
        self.observe(r)
        return x

    def observe(self, r: FraudRequest) -> None:
        """Fold `r` into the state (after it was scored)."""
        at = to_ms(r.at())
        keys = request_keys(r)
        major = major_amount(r.amount_minor, r.currency)
        for kind, key in keys.items():
            if kind in self.velocity:
                self.velocity[kind].add(key, at, major)
        history = self.users[r.user_id]
        history.add(math.log1p(max(major, 0.0)))
        if r.instrument_fingerprint:
            history.instruments.add(r.instrument_fingerprint)
        if r.device_id:
            history.devices.add(r.device_id)
        for kind in ("instrument", "device", "ip"):
            if kind in keys:
                self.accounts_on[kind][keys[kind]].add(r.user_id)
        self.graph.link(r.user_id, [keys[k] for k in ("instrument", "device") if k in keys])
        if r.account_created_at is not None and r.user_id not in self.created_at:
            self.created_at[r.user_id] = to_ms(r.account_created_at)
        self.created_at.setdefault(r.user_id, at)  # unknown accounts: first seen
        if "email_domain" in keys:
            self.domain_txns[keys["email_domain"]] += 1
        self.observed[r.transaction_id] = Observed(at, keys)

    def label(self, transaction_id: str, fraud: bool, *, known_at: datetime | None = None) -> bool:
        """A confirmed label for an observed attempt; it counts in ``*_fraud_seen`` from
        `known_at` (default: the attempt's time plus the label delay). False if unknown."""
        seen = self.observed.get(transaction_id)
        if seen is None or not fraud:
            return seen is not None
        when = to_ms(known_at) if known_at is not None else seen.ts_ms + self.label_delay_ms
        heapq.heappush(self._pending, (when, len(self._pending), dict(seen.keys)))
        return True

    def _release_labels(self, now_ms: int) -> None:
        pending = self._pending
        while pending and pending[0][0] <= now_ms:
            _, _, keys = heapq.heappop(pending)
            for kind in ("instrument", "device", "ip", "email_domain"):
                key = keys.get(kind)
                if key is not None:
                    self.fraud_seen[kind][key] += 1


def fill_request_features(x: np.ndarray, r: FraudRequest, at: int, n: int, mean: float, std: float,
                          created: int | None, home: str | None) -> None:
    """The features that follow from the request and the user's record alone (amount against
    the user's history, account age, hour, geography): shared by every state backend."""
    log_amount = math.log1p(max(major_amount(r.amount_minor, r.currency), 0.0))
    x[0] = log_amount
    if n:
        x[1] = log_amount - mean
        x[2] = x[1] / max(std, 0.25)
        x[3] = n
    else:
        x[1] = x[2] = np.nan
        x[3] = 0.0
    if r.account_created_at is not None:
        created = to_ms(r.account_created_at)
    x[4] = (at - created) / 86_400_000 if created is not None else np.nan
    x[5] = (at // 3_600_000) % 24
    x[_IP_SHIP] = float(r.ip_region != r.shipping_region) if r.ip_region and r.shipping_region else np.nan
    x[_IP_SHIP + 1] = float(r.ip_region != home) if r.ip_region and home else np.nan


def request_keys(r: FraudRequest) -> dict[str, str]:
    keys = {"user": r.user_id}
    for kind, value in (("instrument", r.instrument_fingerprint), ("device", r.device_id), ("ip", r.ip),
                        ("email_domain", r.email_domain)):
        if value:
            keys[kind] = value.lower() if kind == "email_domain" else value
    return keys
