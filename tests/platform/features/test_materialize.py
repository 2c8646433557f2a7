"""Streaming materialisers, fed CloudEvents as the dispatcher would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from marketpilot.domain.entities import InteractionIn, InteractionType
from marketpilot.domain.events import InteractionLogged, OrderPlaced
from marketpilot.marketplace.interactions import InteractionService
from marketpilot.platform.db import Database
from marketpilot.platform.events.base import EventBus
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.dispatcher import Dispatcher
from marketpilot.platform.features import EmbeddedOnlineStore
from marketpilot.platform.features.catalog import (
    listing_engagement_view,
    order_velocity,
    recent_items_view,
    transaction_velocity,
)
from marketpilot.platform.features.materialize import (
    CtrSmoothing,
    InteractionMaterializer,
    Observation,
    VelocityMaterializer,
)

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
HOUR_MS = 3_600_000


def interaction(user: str, listing: str, event: str, at: datetime, iid: str | None = None) -> CloudEvent:
    payload = InteractionLogged(
        interaction_id=iid or f"{user}-{listing}-{event}-{at.isoformat()}",
        user_id=user,
        listing_id=listing,
        event=event,
        timestamp=at.isoformat(),
    )
    return CloudEvent.create(payload, "/test", time=T0 + timedelta(days=1))


def order(order_id: str, user: str, total: int, at: datetime) -> CloudEvent:
    payload = OrderPlaced(order_id=order_id, user_id=user, seller_id="s1", total_minor=total, currency="EUR", lines=[])
    return CloudEvent.create(payload, "/test", time=at)


@pytest.fixture
def store() -> EmbeddedOnlineStore:
    return EmbeddedOnlineStore(metrics=CollectorRegistry())


def materializer(store: EmbeddedOnlineStore, length: int = 3) -> InteractionMaterializer:
    return InteractionMaterializer(store, recent=recent_items_view(length), engagement=listing_engagement_view())


def recent(store: EmbeddedOnlineStore, user: str) -> list[str]:
    batch = store.read(recent_items_view(3), [user], now=T0)
    return batch.ids("recent_items", 0)  # type: ignore[return-value]


def test_recent_items_are_the_last_distinct_listings_newest_first(store: EmbeddedOnlineStore) -> None:
    m = materializer(store)
    for i, listing in enumerate(["a", "b", "a", "c", "d"]):
        m(interaction("u1", listing, "view", T0 + timedelta(minutes=i)), None)
    assert recent(store, "u1") == ["d", "c", "a"]
    batch = store.read(m.recent, ["u1"], now=T0)
    assert batch.column("interactions")[0] == 5
    assert batch.event_time[0] == int((T0 + timedelta(minutes=4)).timestamp() * 1000)


def test_a_late_interaction_takes_its_place_by_event_time(store: EmbeddedOnlineStore) -> None:
    m = materializer(store)
    m.handle([interaction("u1", x, "view", T0 + timedelta(minutes=i)) for i, x in enumerate("abc")])
    m.handle([interaction("u1", "z", "click", T0 + timedelta(seconds=90))])  # between b and c
    assert recent(store, "u1") == ["c", "z", "b"]
    assert store.read(m.recent, ["u1"], now=T0).event_time[0] == int((T0 + timedelta(minutes=2)).timestamp() * 1000)


def test_engagement_counts_views_and_clicks_with_smoothed_ctr(store: EmbeddedOnlineStore) -> None:
    m = materializer(store)
    events = [interaction("u1", "L", "view", T0), interaction("u2", "L", "view", T0 + timedelta(seconds=1)),
              interaction("u2", "L", "click", T0 + timedelta(seconds=2)),
              interaction("u3", "L", "purchase", T0 + timedelta(seconds=3))]
    m.handle(events)
    batch = store.read(m.engagement, ["L"], now=T0)
    views, clicks, ctr = batch.values[0]
    assert (views, clicks) == (2, 1)
    assert ctr == pytest.approx((1 + 0.05 * 20) / (2 + 20), rel=1e-6)
    assert batch.event_time[0] == int((T0 + timedelta(seconds=2)).timestamp() * 1000)


def test_ctr_smoothing_pulls_small_samples_towards_the_prior() -> None:
    s = CtrSmoothing(prior=0.1, strength=10)
    np.testing.assert_allclose(s.ctr(np.array([0, 1, 500]), np.array([0, 1, 1000])), [0.1, 2 / 11, 501 / 1010])


def test_a_redelivered_event_is_not_counted_twice(store: EmbeddedOnlineStore) -> None:
    m = materializer(store)
    event = interaction("u1", "L", "view", T0)
    assert m.handle([event]) == 1
    assert m.handle([event]) == 0
    assert store.read(m.engagement, ["L"], features=["views"], now=T0).values[0, 0] == 1


def test_a_restarted_materializer_continues_from_the_stored_rows(store: EmbeddedOnlineStore) -> None:
    first = materializer(store)
    first.handle([interaction("u1", x, "view", T0 + timedelta(minutes=i)) for i, x in enumerate("abc")])
    second = materializer(store)
    second.handle([interaction("u1", "d", "view", T0 + timedelta(minutes=5)),
                   interaction("u9", "a", "view", T0 + timedelta(minutes=6))])
    assert recent(store, "u1") == ["d", "c", "b"]
    assert store.read(second.recent, ["u1"], now=T0).column("interactions")[0] == 4
    assert store.read(second.engagement, ["a"], features=["views"], now=T0).values[0, 0] == 2


def test_a_bounded_cache_reads_evicted_entities_back_exactly(store: EmbeddedOnlineStore) -> None:
    small = InteractionMaterializer(store, recent=recent_items_view(3), cache_entities=2)
    unbounded = InteractionMaterializer(EmbeddedOnlineStore(metrics=CollectorRegistry()), recent=recent_items_view(3))
    events = [interaction(f"u{i % 5}", f"L{(i * 7) % 11}", "view" if i % 3 else "click",
                          T0 + timedelta(seconds=(i * 37) % 101)) for i in range(60)]
    for event in events:
        small.handle([event])
        unbounded.handle([event])
    assert len(small._users) <= 2 and len(small._listings) <= 2
    users = [f"u{i}" for i in range(5)]
    listings = [f"L{i}" for i in range(11)]
    for view, ids in ((small.recent, users), (small.engagement, listings)):
        a, b = store.read(view, ids, now=T0), unbounded.store.read(view, ids, now=T0)
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.event_time, b.event_time)
        for name in a.lists:
            np.testing.assert_array_equal(a.lists[name], b.lists[name])


def test_materializers_register_with_the_event_bus(store: EmbeddedOnlineStore) -> None:
    bus = EventBus()
    materializer(store).subscribe(bus)
    VelocityMaterializer(store, order_velocity()).subscribe(bus)
    assert bus["features.interactions"].wants(InteractionLogged.TYPE)
    assert bus["features.order-velocity"].wants(OrderPlaced.TYPE)


def test_order_velocity_counts_orders_per_user_by_event_time(store: EmbeddedOnlineStore) -> None:
    spec = order_velocity()
    m = VelocityMaterializer(store, spec)
    m.handle([order("o1", "u1", 1000, T0), order("o3", "u1", 500, T0 + timedelta(hours=2)),
              order("o2", "u1", 200, T0 + timedelta(minutes=90))])  # o2 arrives late
    batch = store.read(spec.views["user"], ["u1"], now=T0)
    assert batch.features == ("count_1h", "count_24h", "amount_1h", "amount_24h")
    assert batch.values[0].tolist() == [2, 3, 700, 1700]
    assert batch.event_time[0] == int((T0 + timedelta(hours=2)).timestamp() * 1000)


def test_velocity_is_kept_per_key_kind(store: EmbeddedOnlineStore) -> None:
    spec = transaction_velocity(["user", "device", "email_domain"])
    m = VelocityMaterializer(store, spec)
    t = int(T0.timestamp() * 1000)
    m.observe([
        Observation("t1", {"user": "u1", "device": "d1", "email_domain": "mail.test"}, 100, t),
        Observation("t2", {"user": "u2", "device": "d1", "email_domain": "mail.test"}, 50, t + 1000),
        Observation("t3", {"user": "u2", "device": None, "email_domain": "other.test"}, 25, t + 2000),
    ])
    def count_24h(kind: str, key: str) -> float:
        return float(store.read(spec.views[kind], [key], features=["count_24h"], now=t).values[0, 0])
    assert count_24h("user", "u2") == 2
    assert count_24h("device", "d1") == 2
    assert count_24h("email_domain", "mail.test") == 2
    assert not store.read(spec.views["device"], [""], now=t).present[0]


def test_advance_slides_windows_to_now_and_decays_to_zero(store: EmbeddedOnlineStore) -> None:
    spec = order_velocity()
    m = VelocityMaterializer(store, spec)
    m.handle([order("o1", "u1", 10, T0), order("o2", "u1", 10, T0 + timedelta(minutes=30))])
    t = int(T0.timestamp() * 1000)
    m.advance(t + 2 * HOUR_MS)
    batch = store.read(spec.views["user"], ["u1"], features=["count_1h", "count_24h"], now=t)
    assert batch.values[0].tolist() == [0, 2]
    assert batch.event_time[0] == t + 2 * HOUR_MS
    m.handle([order("o3", "u1", 10, T0 + timedelta(minutes=90))])  # late, still inside both windows
    batch = store.read(spec.views["user"], ["u1"], features=["count_1h", "count_24h"], now=t)
    assert batch.values[0].tolist() == [1, 3]
    assert batch.event_time[0] == t + 2 * HOUR_MS
    m.advance(t + 30 * HOUR_MS)
    assert store.read(spec.views["user"], ["u1"], now=t).values[0].tolist() == [0, 0, 0, 0]
    assert len(m._counters["user"]) == 0


def test_prime_rebuilds_windows_without_writing(store: EmbeddedOnlineStore) -> None:
    spec = order_velocity()
    t = int(T0.timestamp() * 1000)
    m = VelocityMaterializer(store, spec)
    assert m.prime([Observation("o1", {"user": "u1"}, 5, t), Observation("o2", {"user": "u1"}, 5, t + 1)]) == 2
    assert not store.read(spec.views["user"], ["u1"], now=t).present[0]
    m.observe([Observation("o3", {"user": "u1"}, 5, t + 2)])
    assert store.read(spec.views["user"], ["u1"], features=["count_1h"], now=t).values[0, 0] == 3


def test_a_velocity_view_of_another_shape_is_rejected(store: EmbeddedOnlineStore) -> None:
    spec = order_velocity(windows=[timedelta(hours=1)])
    with pytest.raises(ValueError, match="must hold exactly"):
        VelocityMaterializer(store, type(spec)(spec.views, (timedelta(hours=2),)))


def test_the_dispatcher_delivers_interactions_to_the_materializer(db: Database, store: EmbeddedOnlineStore) -> None:
    bus = EventBus()
    m = materializer(store)
    m.subscribe(bus)
    InteractionService(db, "/test").ingest(
        [InteractionIn(user_id="u1", listing_id=x, event=InteractionType.VIEW, timestamp=T0 + timedelta(seconds=i))
         for i, x in enumerate(["a", "b", "a"])]
    )
    assert Dispatcher(db, bus).run_once() == 3
    assert recent(store, "u1") == ["a", "b"]
    assert store.read(m.engagement, ["a"], features=["views"], now=T0).values[0, 0] == 2
