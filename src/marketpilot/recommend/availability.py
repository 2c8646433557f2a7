"""What may be served right now: a boolean mask over listings, kept current from events.

A listing is servable when its status is ``active`` and it has stock that no checkout lock
holds (``quantity - reserved > 0``); sold-out, checkout-locked, draft and delisted listings
are not. The state lives in process as numpy arrays indexed by a *listing universe* (every
listing known to the database, append-only), so a request builds its mask with a few vector
operations instead of a query.

Freshness comes from the outbox, the same log every subscriber reads:

* :meth:`Availability.refresh` reads the outbox past its cursor (``read_committed``: never past
  an in-flight position on PostgreSQL) and applies ``InventoryChanged``, ``ListingCreated``,
  ``ListingUpdated``, ``OrderPlaced`` and ``DataImported``. The service calls it before every
  request in the embedded profile, so an inventory event committed before a request starts
  takes effect for that request ("the next request"). In the distributed profile it runs at
  most every ``refresh_interval`` seconds per replica, so a change takes effect within that lag.
* :meth:`Availability.on_event` is the same fold as an event-bus handler, for processes that
  receive the stream from Kafka (the worker) instead of reading the table.

Every event carries absolute state (``available``, the new ``status``), never a delta, and a
listing's events are applied only in increasing outbox position, so replaying events, or
applying one both from the stream and the table, is harmless.

Suppression (recently purchased, already seen) is a separate, configurable rule
(:class:`SuppressionRule`) applied per request on top of the mask.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketpilot.domain.events import (
    DataImported,
    InteractionLogged,
    InventoryChanged,
    ListingCreated,
    ListingUpdated,
    OrderPlaced,
)
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.horizon import read_committed
from marketpilot.recommend.model import BoolArray, Catalog, IntArray

AVAILABILITY_EVENTS: tuple[str, ...] = (
    InventoryChanged.TYPE,
    ListingCreated.TYPE,
    ListingUpdated.TYPE,
    OrderPlaced.TYPE,
    DataImported.TYPE,
)
# what `_apply` reads the payload of; other events (the slates this service logs) are skipped
_FOLDED = (*AVAILABILITY_EVENTS, InteractionLogged.TYPE)
_RELOADING_IMPORTS = frozenset({"listings", "inventory"})
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SuppressionRule:
    """Which items a user or session must not be shown again.

    ``purchased_days``: items the user bought within this many days (0 disables).
    ``seen_history``: items in the user's recent interactions (the request's history).
    ``max_impressions``: items already served to the same user/session this many times
    within ``impression_window_s`` seconds without leaving the slate (None disables).
    """

    purchased_days: float = 30.0
    seen_history: bool = True
    max_impressions: int | None = 3
    impression_window_s: float = 3600.0
    tracked_subjects: int = 100_000

    def __post_init__(self) -> None:
        if self.purchased_days < 0:
            raise ValueError(f"purchased_days must be >= 0, got {self.purchased_days}")
        if self.max_impressions is not None and self.max_impressions < 1:
            raise ValueError(f"max_impressions must be at least 1 or None, got {self.max_impressions}")
        if self.impression_window_s <= 0:
            raise ValueError(f"impression_window_s must be positive, got {self.impression_window_s}")


class _Bounded(OrderedDict[str, dict[int, Any]]):
    """subject -> {item: time (purchases) or (count, first shown) (impressions)}: the most
    recently touched `capacity` subjects."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def touch(self, key: str) -> dict[int, Any]:
        got = self.get(key)
        if got is None:
            got = self[key] = {}
            if len(self) > self.capacity:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return got


_ACTIVE = "active"
_STATUS_CODES = {"active": 0, "draft": 1, "sold_out": 2, "delisted": 3}


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value).timestamp()
    return time.time()


class ListingUniverse:
    """Every listing the database knows, by a stable index (append-only), with the attributes
    the request path filters and ranks on, as arrays. Grows by doubling; readers take the
    arrays as they are and never see a half-grown state (one attribute swap)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.categories: list[str] = []
        self._category_code: dict[str, int] = {}
        self._prefix_cache: dict[str, np.ndarray] = {}
        self._arrays = self._allocate(1024)
        self.n = 0
        # sellers by code, and how many listings each has in the universe (seller size, for
        # the small-seller exposure group)
        self._seller_code: dict[str, int] = {}
        self._seller_listings = np.zeros(64, dtype=np.int64)

    @staticmethod
    def _allocate(capacity: int) -> dict[str, np.ndarray]:
        return {
            "category": np.zeros(capacity, dtype=np.int32),
            "price": np.zeros(capacity, dtype=np.int64),
            "created": np.zeros(capacity, dtype=np.float64),
            "status": np.full(capacity, _STATUS_CODES["draft"], dtype=np.int8),
            "available": np.zeros(capacity, dtype=np.int64),
            "servable": np.zeros(capacity, dtype=np.bool_),
            "position": np.zeros(capacity, dtype=np.int64),
            "seller": np.full(capacity, -1, dtype=np.int32),
        }

    def array(self, name: str) -> np.ndarray:
        """The first `n` entries of one attribute (a view; do not write to it)."""
        return self._arrays[name][: self.n]

    def snapshot(self) -> tuple[int, dict[str, np.ndarray]]:
        """`n` and the arrays read together, so a concurrent append cannot make their
        lengths disagree (slice every array with ``[:n]``)."""
        arrays = self._arrays
        return min(self.n, len(arrays["servable"])), arrays

    def code(self, category: str) -> int:
        code = self._category_code.get(category)
        if code is None:
            code = self._category_code[category] = len(self.categories)
            self.categories.append(category)
            self._prefix_cache.clear()
        return code

    def add(self, listing_id: str) -> int:
        """The listing's index, appending it (not servable) if new."""
        i = self.index.get(listing_id)
        if i is not None:
            return i
        i = self.n
        capacity = len(self._arrays["servable"])
        if i == capacity:
            grown = self._allocate(capacity * 2)
            for name, arr in self._arrays.items():
                grown[name][:capacity] = arr
            self._arrays = grown
        self.ids.append(listing_id)
        self.index[listing_id] = i
        self.n = i + 1
        return i

    def seller_listings(self, items: np.ndarray) -> np.ndarray:
        """How many listings the seller of each of `items` has (0 where unknown)."""
        codes = self.array("seller")[items]
        counts = self._seller_listings
        return np.where(codes >= 0, counts[np.maximum(codes, 0)], 0)

    def _set_seller(self, i: int, seller: str) -> int:
        code = self._seller_code.get(seller)
        if code is None:
            code = self._seller_code[seller] = len(self._seller_code)
            if code >= len(self._seller_listings):
                grown = np.zeros(2 * len(self._seller_listings), dtype=np.int64)
                grown[: len(self._seller_listings)] = self._seller_listings
                self._seller_listings = grown
        old = int(self._arrays["seller"][i])
        if old != code:
            if old >= 0:
                self._seller_listings[old] -= 1
            self._seller_listings[code] += 1
        return code

    def set(self, i: int, **values: Any) -> None:
        arrays = self._arrays
        for name, value in values.items():
            if name == "category":
                value = self.code(str(value))
            elif name == "seller":
                value = self._set_seller(i, str(value))
            arrays[name][i] = value
        arrays["servable"][i] = arrays["status"][i] == 0 and arrays["available"][i] > 0

    def category_codes(self, prefix: str) -> np.ndarray:
        """Codes of every category equal to `prefix` or below it (``fashion`` matches
        ``fashion/shoes``, not ``fashionable``)."""
        cached = self._prefix_cache.get(prefix)
        if cached is None:
            stem = prefix.rstrip("/")
            cached = np.fromiter(
                (c for c, name in enumerate(self.categories) if name == stem or name.startswith(stem + "/")),
                dtype=np.int32,
            )
            self._prefix_cache[prefix] = cached
        return cached


@dataclass(frozen=True, slots=True)
class Filters:
    """Request filters: a category path prefix and an inclusive price range in minor units."""

    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None


class Availability:
    """The servable mask over a :class:`ListingUniverse`, folded from the outbox.

    Thread-safe: updates hold a lock; a request's mask is built from the arrays after the
    refresh that covers it has finished.
    """

    def __init__(
        self,
        db: Database,
        *,
        rule: SuppressionRule | None = None,
        refresh_interval: float = 0.0,
        clock: Any = time.time,
    ) -> None:
        self.db = db
        self.rule = rule or SuppressionRule()
        self.refresh_interval = refresh_interval
        self.universe = ListingUniverse()
        self._clock = clock
        self._lock = threading.RLock()
        self._cursor = 0
        self._loaded = False
        self._last_refresh_start = -1.0
        self._purchases = _Bounded(self.rule.tracked_subjects)
        self._impressions = _Bounded(self.rule.tracked_subjects)
        self._mappings: dict[int, tuple[int, Catalog, IntArray, bool]] = {}
        self._probe: Any = None
        # Interactions pass through the same fold on their way past: the slate feedback of
        # the exploration policy listens here (slate_feedback.py) instead of tailing again.
        self.interaction_listener: Callable[[Mapping[str, Any]], object] | None = None

    # -- loading and refreshing ---------------------------------------------------------

    def load(self) -> None:
        """Snapshot every listing and its stock. The cursor is taken *before* the snapshot,
        so events racing with it are re-applied afterwards (absolute state: harmless)."""
        with self._lock:
            fresh = ListingUniverse()
            purchases = _Bounded(self.rule.tracked_subjects)
            with self.db.read() as s:
                cursor = int(s.scalar(select(func.max(t.OutboxEvent.position))) or 0)
                rows = s.execute(
                    select(
                        t.Listing.id,
                        t.Listing.seller_id,
                        t.Listing.category_path,
                        t.Listing.price_minor,
                        t.Listing.created_at,
                        t.Listing.status,
                        func.coalesce(t.Inventory.quantity - t.Inventory.reserved, 0),
                    )
                    .outerjoin(t.Inventory, t.Inventory.listing_id == t.Listing.id)
                    .order_by(t.Listing.id)
                )
                for lid, seller, category, price, created, status, available in rows:
                    fresh.set(
                        fresh.add(lid),
                        seller=seller,
                        category=category,
                        price=int(price),
                        created=_epoch(created),
                        status=_STATUS_CODES.get(status, 1),
                        available=int(available),
                    )
                if self.rule.purchased_days > 0:
                    since = datetime.fromtimestamp(self._clock() - self.rule.purchased_days * 86400.0).astimezone()
                    bought = s.execute(
                        select(t.Order.user_id, t.OrderLine.listing_id, t.Order.created_at)
                        .join(t.OrderLine, t.OrderLine.order_id == t.Order.id)
                        .where(t.Order.created_at >= since)
                        .order_by(t.Order.created_at)
                    )
                    for user, lid, at in bought:
                        i = fresh.index.get(lid)
                        if i is not None:
                            purchases.touch(user)[i] = _epoch(at)
            self.universe = fresh
            self._purchases = purchases
            self._cursor = cursor
            self._mappings.clear()
            self._loaded = True
        self.refresh(force=True)

    @property
    def cursor(self) -> int:
        """The outbox position the state reflects (part of a slate's feature snapshot id)."""
        return self._cursor

    def ensure_loaded(self) -> None:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self.load()

    def refresh(self, *, force: bool = False) -> int:
        """Apply every outbox event committed before this call; returns how many applied.

        Concurrent callers share work: a caller that waited for the lock while another
        refresh *started after it* needs nothing more (that refresh saw every commit this
        caller could require).
        """
        started = time.monotonic()
        if not self._loaded:
            self.ensure_loaded()
            return 0
        if not force and self.refresh_interval > 0 and started - self._last_refresh_start < self.refresh_interval:
            return 0
        with self._lock:
            if not force and self._last_refresh_start > started:
                return 0
            self._last_refresh_start = time.monotonic()
            if not force and self._head() == self._cursor:
                return 0
            applied = 0
            with self.db.read() as s:
                while True:
                    records = read_committed(s, self._cursor, _BATCH, _FOLDED)
                    for record in records:
                        applied += self._apply(record.event, record.position)
                        self._cursor = record.position
                    if len(records) < _BATCH:
                        break
                if s.get_bind().dialect.name == "postgresql":
                    applied += self._apply_beyond_gap(s)
            return applied

    def _head(self) -> int | None:
        """SQLite: the outbox head through one held DBAPI connection, so a refresh with
        nothing new costs one primary-key lookup instead of an ORM session (the common case
        on the request path). A plain SELECT opens no transaction in Python's sqlite3, so
        each call sees every commit. Elsewhere None: always take the full path."""
        if not self.db.is_sqlite:
            return None
        if self._probe is None:
            self._probe = self.db.engine.raw_connection()
        cursor = self._probe.cursor()
        try:
            cursor.execute("SELECT MAX(position) FROM outbox")
            row = cursor.fetchone()
        finally:
            cursor.close()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    def _apply_beyond_gap(self, s: Session) -> int:
        """PostgreSQL: apply relevant events already committed past an in-flight position.
        The cursor stays put, so they are seen again (and skipped per listing) later. A
        listing's own events cannot overtake each other: its row lock orders them."""
        rows = s.execute(
            select(
                t.OutboxEvent.position,
                t.OutboxEvent.event_id,
                t.OutboxEvent.source,
                t.OutboxEvent.type,
                t.OutboxEvent.subject,
                t.OutboxEvent.time,
                t.OutboxEvent.data,
            )
            .where(t.OutboxEvent.position > self._cursor, t.OutboxEvent.type.in_(AVAILABILITY_EVENTS))
            .order_by(t.OutboxEvent.position)
        )
        applied = 0
        for position, eid, source, etype, subject, at, data in rows:
            event = CloudEvent(id=eid, source=source, type=etype, subject=subject, time=at, data=data)
            applied += self._apply(event, int(position))
        return applied

    def on_event(self, event: CloudEvent, session: Session) -> None:
        """Event-bus handler (worker / Kafka): the same fold as :meth:`refresh`. Before the
        first load it does nothing: the load's snapshot will include the event."""
        del session
        if self._loaded:
            with self._lock:
                self._apply(event, None)

    def _apply(self, event: CloudEvent, position: int | None) -> int:
        kind = event.type
        data: Mapping[str, Any] = event.data or {}
        if kind == InteractionLogged.TYPE:
            if self.interaction_listener is not None:
                self.interaction_listener(data)
            return 0
        u = self.universe
        if kind == InventoryChanged.TYPE:
            i = u.add(str(data["listing_id"]))
            if not self._newer(i, position):
                return 0
            u.set(i, available=int(data["available"]))
            return 1
        if kind == ListingCreated.TYPE:
            i = u.add(str(data["listing_id"]))
            if not self._newer(i, position):
                return 0
            u.set(
                i,
                seller=data["seller_id"],
                category=data["category_path"],
                price=int(data["price_minor"]),
                created=_epoch(event.time),
                status=_STATUS_CODES.get(str(data["status"]), 1),
            )
            return 1
        if kind == ListingUpdated.TYPE:
            i = u.add(str(data["listing_id"]))
            if not self._newer(i, position):
                return 0
            changes: Mapping[str, Any] = data.get("changes") or {}
            update: dict[str, Any] = {}
            if "status" in changes:
                update["status"] = _STATUS_CODES.get(str(changes["status"]), 1)
            if "price_minor" in changes:
                update["price"] = int(changes["price_minor"])
            if "category_path" in changes:
                update["category"] = changes["category_path"]
            u.set(i, **update)
            return 1
        if kind == OrderPlaced.TYPE:
            if self.rule.purchased_days > 0:
                bought = self._purchases.touch(str(data["user_id"]))
                at = _epoch(event.time)
                for line in data.get("lines") or ():
                    bought[u.add(str(line["listing_id"]))] = at
            return 1
        if kind == DataImported.TYPE and data.get("kind") in _RELOADING_IMPORTS:
            self._loaded = False  # bulk change without per-row events: reload on next use
            return 1
        return 0

    def _newer(self, i: int, position: int | None) -> bool:
        if position is None:
            return True
        positions = self.universe._arrays["position"]
        if positions[i] >= position:
            return False
        positions[i] = position
        return True

    # -- per request --------------------------------------------------------------------

    def mask(self, filters: Filters | None = None) -> BoolArray:
        """A fresh servable mask over the universe (a copy the caller may change)."""
        self.ensure_loaded()
        u = self.universe
        n, arrays = u.snapshot()
        allowed = arrays["servable"][:n].copy()
        if filters is not None:
            if filters.category is not None:
                codes = arrays["category"][:n]
                wanted = u.category_codes(filters.category)
                # a lookup table over the category codes (a gather), not isin's sort of the catalogue
                table = np.zeros(len(u.categories) + 1, np.bool_)  # codes index `u.categories`
                table[wanted] = True
                allowed &= np.take(table, codes, mode="clip")  # a category newer than `table`: its False
            if filters.min_price is not None:
                allowed &= arrays["price"][:n] >= filters.min_price
            if filters.max_price is not None:
                allowed &= arrays["price"][:n] <= filters.max_price
        return allowed

    def suppressed(self, user_id: str | None, subject: str | None) -> IntArray:
        """Universe indices the rule hides from this user / session right now."""
        now = self._clock()
        hidden: list[int] = []
        if user_id is not None and self.rule.purchased_days > 0:
            bought = self._purchases.get(user_id)
            if bought:
                horizon = now - self.rule.purchased_days * 86400.0
                hidden.extend(i for i, at in list(bought.items()) if at >= horizon)
        cap = self.rule.max_impressions
        if subject is not None and cap is not None:
            shown = self._impressions.get(subject)
            if shown:
                horizon = now - self.rule.impression_window_s
                hidden.extend(i for i, (count, first) in list(shown.items()) if count >= cap and first >= horizon)
        return np.asarray(hidden, dtype=np.int64)

    def record_impressions(self, subject: str | None, items: Iterable[int]) -> None:
        """Count a served slate against the impressions cap (universe indices)."""
        if subject is None or self.rule.max_impressions is None:
            return
        now = self._clock()
        horizon = now - self.rule.impression_window_s
        with self._lock:
            shown: dict[int, Any] = self._impressions.touch(subject)
            for i in items:
                count, first = shown.get(i, (0, now))
                if first < horizon:
                    count, first = 0, now
                shown[i] = (count + 1, first)

    def to_catalog(self, catalog: Catalog, universe_mask: BoolArray) -> BoolArray:
        """The universe mask expressed over a model's catalogue (unknown listings: False)."""
        u = self.universe
        key = id(catalog)
        cached = self._mappings.get(key)
        if cached is None or cached[0] != u.n or cached[1] is not catalog:
            index = u.index
            mapping = np.fromiter(
                (index.get(str(lid), -1) for lid in catalog.listing_ids), dtype=np.int64, count=catalog.n_items
            )
            # the usual case: the model's catalogue lists the universe's listings in its order
            identity = catalog.n_items <= u.n and bool((mapping == np.arange(catalog.n_items)).all())
            cached = (u.n, catalog, mapping, identity)
            self._mappings[key] = cached
        mapping = cached[2]
        if len(universe_mask) < u.n:  # grew since the mask was built: new listings stay hidden
            universe_mask = np.concatenate([universe_mask, np.zeros(u.n - len(universe_mask), np.bool_)])
        if cached[3]:  # a slice, not a gather over the whole catalogue on every request
            return universe_mask[: catalog.n_items].copy()
        padded = np.append(universe_mask, False)  # index -1 reads the trailing False
        return padded[mapping]

    def universe_indices(self, catalog: Catalog, items: IntArray) -> IntArray:
        """Universe indices of a model's catalogue items (-1 for unknown)."""
        cached = self._mappings.get(id(catalog))
        if cached is not None and cached[1] is catalog and cached[3]:
            return np.asarray(items, np.int64)
        index = self.universe.index
        return np.fromiter((index.get(str(catalog.listing_ids[i]), -1) for i in items), dtype=np.int64, count=len(items))

    def is_servable(self, listing_id: str) -> bool:
        i = self.universe.index.get(listing_id)
        return i is not None and bool(self.universe.array("servable")[i])
