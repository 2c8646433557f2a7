"""Streaming materialisers: keep online features fresh from the event stream.

Each materialiser is an event handler (``handler(event, session)``, the
:mod:`marketpilot.platform.events.base` contract) that folds events into a small in-memory
state and writes the affected entities' rows to an :class:`OnlineStore`, stamped with the
newest *event* time seen for that entity. Out-of-order events are folded in correctly
(recent items keep their event-time order, windows count by event-time bucket) and a row is
never written with an older time than one already written, so the store's "newer wins" rule
never drops a state that includes a late event.

State is resumed lazily: the first time an entity is seen after start-up (or after it left
the bounded in-memory cache) its row is read back from the store, so counts and recent
items continue exactly rather than restart. Velocity windows cannot
be rebuilt from a row (it holds totals, not buckets); :meth:`VelocityMaterializer.prime`
replays the last window's history from the database instead (see ``backfill.py``).

Delivery is at least once and these writes are outside the handler's database transaction:
an event redelivered within the process lifetime is recognised by id and skipped; one
redelivered after a crash between the store write and the commit is counted twice. The batch
backfill (``backfill.py``) recomputes the same features from the tables and corrects that.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np
from sqlalchemy.orm import Session

from marketpilot.domain.events import InteractionLogged, OrderPlaced
from marketpilot.platform.events.base import EventBus
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.features._time import TimeLike, to_ms
from marketpilot.platform.features.catalog import (
    VelocitySpec,
    listing_engagement_view,
    recent_items_view,
    velocity_features,
)
from marketpilot.platform.features.online import OnlineStore
from marketpilot.platform.features.views import FeatureView
from marketpilot.platform.features.windows import WindowedCounter

V = TypeVar("V")
INTERACTION_EVENTS = ("view", "click", "add_to_cart", "purchase", "rating")


@dataclass(frozen=True)
class CtrSmoothing:
    """Click-through rate pulled towards ``prior`` by ``strength`` pseudo-views:
    ``(clicks + prior * strength) / (views + strength)``, so a listing with 1 view and 1 click
    is not ranked as a sure thing."""

    prior: float = 0.05
    strength: float = 20.0

    def ctr(self, clicks: np.ndarray, views: np.ndarray) -> np.ndarray:
        clicks = np.asarray(clicks, dtype=np.float64)
        views = np.asarray(views, dtype=np.float64)
        return (clicks + self.prior * self.strength) / (views + self.strength)


class _SeenIds:
    """The last `capacity` event ids handled, to absorb in-process redeliveries."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def add(self, event_id: str) -> bool:
        """False if the id was already seen."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())
        return True


def interaction_time_ms(payload: InteractionLogged) -> int:
    """The interaction's own time (when the buyer acted), not when the event was published."""
    return to_ms(datetime.fromisoformat(payload.timestamp))


class _RecentItems:
    __slots__ = ("items", "count", "latest")

    def __init__(self) -> None:
        self.items: dict[str, int] = {}  # listing -> latest time
        self.count = 0
        self.latest = 0

    def add(self, listing: str, ts: int, keep: int) -> None:
        self.count += 1
        self.latest = max(self.latest, ts)
        if self.items.get(listing, -1) < ts:
            self.items[listing] = ts
        if len(self.items) > keep:
            oldest = min(self.items.items(), key=lambda kv: (kv[1], kv[0]))[0]
            del self.items[oldest]

    def newest_first(self) -> tuple[list[str], list[int]]:
        ordered = sorted(self.items.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        return [k for k, _ in ordered], [v for _, v in ordered]


def _touch(cache: dict[str, V], ids: Iterable[str]) -> None:
    """Move touched entities to the young end of the cache (dicts keep insertion order)."""
    for key in ids:
        if key in cache:
            cache[key] = cache.pop(key)


def _trim(cache: dict[str, V], capacity: int) -> None:
    """Drop the least recently touched entities beyond `capacity`: their rows are in the
    store, already written, and are read back exactly when they are seen again."""
    excess = len(cache) - capacity
    if excess > 0:
        for key in list(itertools.islice(cache, excess)):
            del cache[key]


class InteractionMaterializer:
    """``InteractionLogged`` -> ``user_recent_items`` and ``listing_engagement``.

    Recent items: the user's last N distinct listings over ``recent_events``, newest first
    (ties by listing id, descending). Engagement: view and click counts of a listing and
    their smoothed CTR; other interaction kinds do not touch it.
    """

    TYPES = (InteractionLogged.TYPE,)

    def __init__(
        self,
        store: OnlineStore,
        *,
        recent: FeatureView | None = None,
        engagement: FeatureView | None = None,
        smoothing: CtrSmoothing | None = None,
        recent_events: Sequence[str] = INTERACTION_EVENTS,
        remember_ids: int = 100_000,
        cache_entities: int = 200_000,
    ) -> None:
        self.store = store
        self.cache_entities = cache_entities
        self.recent = recent or recent_items_view()
        self.engagement = engagement or listing_engagement_view()
        self.smoothing = smoothing or CtrSmoothing()
        self.recent_events = frozenset(recent_events)
        self.keep = self.recent.feature("recent_items").dtype.length
        self._users: dict[str, _RecentItems] = {}
        self._listings: dict[str, list[int]] = {}  # listing -> [views, clicks, latest]
        self._seen = _SeenIds(remember_ids)

    def __call__(self, event: CloudEvent, session: Session | None = None) -> None:
        self.handle([event])

    def subscribe(self, bus: EventBus, name: str = "features.interactions") -> None:
        bus.subscribe(name, self.TYPES, self)

    def handle(self, events: Iterable[CloudEvent]) -> int:
        """Fold a batch of events in and write each touched entity once; returns events applied."""
        payloads = []
        for event in events:
            if event.type in self.TYPES:
                payload = event.payload()
                if not isinstance(payload, InteractionLogged):
                    raise TypeError(f"event {event.id} of type {event.type} carries {type(payload).__name__}")
                payloads.append(payload)
        return self.observe(payloads)

    def observe(self, interactions: Sequence[InteractionLogged]) -> int:
        fresh = [p for p in interactions if self._seen.add(p.interaction_id)]
        self._resume([p.user_id for p in fresh], [p.listing_id for p in fresh])
        users: set[str] = set()
        listings: set[str] = set()
        for p in fresh:
            ts = interaction_time_ms(p)
            if p.event in self.recent_events:
                self._users[p.user_id].add(p.listing_id, ts, self.keep)
                users.add(p.user_id)
            if p.event in ("view", "click"):
                cell = self._listings[p.listing_id]
                cell[0 if p.event == "view" else 1] += 1
                cell[2] = max(cell[2], ts)
                listings.add(p.listing_id)
        self._write(sorted(users), sorted(listings))
        _trim(self._users, self.cache_entities)
        _trim(self._listings, self.cache_entities)
        return len(fresh)

    def _resume(self, user_ids: list[str], listing_ids: list[str]) -> None:
        _touch(self._users, user_ids)
        _touch(self._listings, listing_ids)
        new_users = sorted({u for u in user_ids if u not in self._users})
        if new_users:
            got = self.store.read(self.recent, new_users, record_stale=False)
            count = got.column("interactions")
            for i, user in enumerate(new_users):
                state = self._users[user] = _RecentItems()
                if got.present[i]:
                    items = got.ids("recent_items", i)
                    times = got.lists["recent_times"][i, : len(items)].tolist()
                    state.items = dict(zip(map(str, items), times, strict=True))
                    state.count, state.latest = int(count[i]), int(got.event_time[i])
        new_listings = sorted({x for x in listing_ids if x not in self._listings})
        if new_listings:
            got = self.store.read(self.engagement, new_listings, features=["views", "clicks"], record_stale=False)
            for i, listing in enumerate(new_listings):
                if got.present[i]:
                    views, clicks = got.values[i]
                    self._listings[listing] = [int(views), int(clicks), int(got.event_time[i])]
                else:
                    self._listings[listing] = [0, 0, 0]

    def _write(self, users: list[str], listings: list[str]) -> None:
        if users:
            states = [self._users[u] for u in users]
            lists = [s.newest_first() for s in states]
            self.store.write(
                self.recent,
                users,
                {
                    "recent_items": [items for items, _ in lists],
                    "recent_times": [times for _, times in lists],
                    "interactions": [s.count for s in states],
                },
                np.array([s.latest for s in states], dtype=np.int64),
            )
        if listings:
            cells = np.array([self._listings[x] for x in listings], dtype=np.int64)
            self.store.write(
                self.engagement,
                listings,
                {"views": cells[:, 0], "clicks": cells[:, 1], "ctr": self.smoothing.ctr(cells[:, 1], cells[:, 0])},
                cells[:, 2],
            )


@dataclass(frozen=True)
class Observation:
    """One payment attempt (or order) as velocity sees it: its keys by kind, amount and time."""

    id: str
    keys: Mapping[str, str | None]
    amount: float
    ts_ms: int


def order_observation(event: CloudEvent) -> Observation:
    """``OrderPlaced`` carries only the user; its time is the event's (the order's creation)."""
    payload = event.payload()
    if not isinstance(payload, OrderPlaced):
        raise TypeError(f"event {event.id} of type {event.type} carries {type(payload).__name__}")
    return Observation(payload.order_id, {"user": payload.user_id}, float(payload.total_minor), to_ms(event.time))


class VelocityMaterializer:
    """Counts and amounts per key over sliding windows -> one velocity view per key kind.

    Each row holds the windows ending at the key's newest event (or at the last
    :meth:`advance`), stamped with that time: a reader comparing ``event_time`` with now
    knows how far the windows have slid since.
    """

    TYPES = (OrderPlaced.TYPE,)

    def __init__(
        self,
        store: OnlineStore,
        spec: VelocitySpec,
        *,
        bucket: timedelta = timedelta(minutes=1),
        remember_ids: int = 100_000,
    ) -> None:
        self.store = store
        self.spec = spec
        self.bucket = bucket
        self._counters = {kind: WindowedCounter(spec.windows, bucket) for kind in spec.views}
        self._asof: dict[str, dict[str, int]] = {kind: {} for kind in spec.views}
        self._seen = _SeenIds(remember_ids)
        self._names = [f.name for f in velocity_features(spec.windows)]
        for kind, view in spec.views.items():
            have = sorted(f.name for f in view.features)
            if have != sorted(self._names):
                raise ValueError(
                    f"velocity view {view.name!r} for {kind!r} must hold exactly {self._names}, has {have}"
                )

    def __call__(self, event: CloudEvent, session: Session | None = None) -> None:
        self.handle([event])

    def subscribe(self, bus: EventBus, name: str = "features.order-velocity") -> None:
        bus.subscribe(name, self.TYPES, self)

    def handle(self, events: Iterable[CloudEvent]) -> int:
        return self.observe([order_observation(e) for e in events if e.type in self.TYPES])

    def prime(self, observations: Iterable[Observation]) -> int:
        """Fold history in without writing: rebuild the windows after a restart."""
        return self._fold(observations)[0]

    def observe(self, observations: Iterable[Observation]) -> int:
        """Fold observations in and write every touched key's row once; returns observations applied."""
        applied, touched = self._fold(observations)
        for kind, keys in touched.items():
            if keys:
                self._write(kind, sorted(keys), at_ms=None)
        return applied

    def _fold(self, observations: Iterable[Observation]) -> tuple[int, dict[str, set[str]]]:
        touched: dict[str, set[str]] = {kind: set() for kind in self._counters}
        applied = 0
        for obs in observations:
            if not self._seen.add(obs.id):
                continue
            applied += 1
            for kind, key in obs.keys.items():
                counter = self._counters.get(kind)
                if counter is None or not key:
                    continue
                if counter.add(key, obs.ts_ms, obs.amount):
                    touched[kind].add(key)
        return applied, touched

    def advance(self, now: TimeLike) -> int:
        """Rewrite every key's windows as ending at `now` (stamped `now`), so rows decay to zero
        as time passes without events; returns rows written. Run it periodically (e.g. once a
        bucket) where as-of-now velocity matters more than as-of-last-event.

        A key whose windows are all empty at `now` is written once more (zeros) and forgotten.
        A late event for it that is still inside a window of `now` is then not applied to the
        stored row (the row is newer); the next backfill corrects it.
        """
        at = to_ms(now)
        written = 0
        for kind, counter in self._counters.items():
            keys = sorted(k for k in counter.keys() if (counter.latest(k) or 0) <= at)
            if not keys:
                continue
            written += self._write(kind, keys, at_ms=at)
            for key in keys:
                counts, _ = counter.totals(key, at)
                if not counts.any():
                    counter.forget(key)
                    self._asof[kind].pop(key, None)
        return written

    def _write(self, kind: str, keys: list[str], at_ms: int | None) -> int:
        counter = self._counters[kind]
        asof = self._asof[kind]
        view = self.spec.views[kind]
        times = np.empty(len(keys), dtype=np.int64)
        table = np.empty((len(keys), 2 * len(self.spec.windows)))
        for i, key in enumerate(keys):
            t = at_ms if at_ms is not None else max(counter.latest(key) or 0, asof.get(key, 0))
            asof[key] = t
            counts, sums = counter.totals(key, t)
            table[i] = np.concatenate([counts, sums])
            times[i] = t
        return self.store.write(view, keys, {name: table[:, j] for j, name in enumerate(self._names)}, times)
