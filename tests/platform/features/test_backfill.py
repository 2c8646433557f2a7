"""The batch backfill and the streaming materialisers agree on the same data (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from marketpilot.domain.entities import InteractionIn, InteractionType
from marketpilot.domain.events import OrderPlaced
from marketpilot.marketplace.interactions import InteractionService
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.outbox import row_to_event
from marketpilot.platform.features import EmbeddedOnlineStore, FeatureView, OnlineStore
from marketpilot.platform.features.backfill import (
    backfill_interactions,
    backfill_velocity,
    export_orders,
    export_transactions,
    observations,
    since,
)
from marketpilot.platform.features.catalog import (
    TRANSACTION_KEYS,
    listing_engagement_view,
    order_velocity,
    recent_items_view,
    transaction_velocity,
)
from marketpilot.platform.features.materialize import (
    InteractionMaterializer,
    Observation,
    VelocityMaterializer,
)

T0 = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
EVENTS = ["view", "view", "view", "click", "add_to_cart", "purchase", "rating"]


def new_store() -> EmbeddedOnlineStore:
    return EmbeddedOnlineStore(metrics=CollectorRegistry())


def random_time(rng: random.Random, hours: float, resolution: timedelta = timedelta(microseconds=1)) -> datetime:
    return T0 + resolution * rng.randrange(int(timedelta(hours=hours) / resolution))


def assert_same_rows(a: OnlineStore, b: OnlineStore, view: FeatureView, ids: list[str]) -> None:
    left = a.read(view, ids, now=T0)
    right = b.read(view, ids, now=T0)
    assert left.present.sum() > 0
    np.testing.assert_array_equal(left.present, right.present)
    np.testing.assert_array_equal(left.event_time, right.event_time)
    np.testing.assert_array_equal(left.values, right.values)
    for name in left.lists:
        np.testing.assert_array_equal(left.lists[name], right.lists[name])


def test_streaming_and_batch_interaction_features_agree(db: Database) -> None:
    rng = random.Random(7)
    users = [f"u{i}" for i in range(25)]
    listings = [f"L{i}" for i in range(40)]
    base = [random_time(rng, 72) for _ in range(200)]
    batch = [
        InteractionIn(
            user_id=rng.choice(users),
            listing_id=rng.choice(listings),
            event=InteractionType(rng.choice(EVENTS)),
            # reuse instants so that ties (same time, other listing) occur
            timestamp=rng.choice(base),
        )
        for _ in range(900)
    ]
    InteractionService(db, "/test").ingest(batch)
    with db.session() as s:
        events = [row_to_event(r) for r in s.scalars(select(t.OutboxEvent).order_by(t.OutboxEvent.position))]
    rng.shuffle(events)  # delivery out of event-time order

    recent, engagement = recent_items_view(5), listing_engagement_view()
    streamed = new_store()
    first = InteractionMaterializer(streamed, recent=recent, engagement=engagement)
    half = len(events) // 2
    for start in range(0, half, 50):
        first.handle(events[start : start + 50])
    for event in events[half - 20 : half + 20]:  # one at a time, 20 of them redelivered
        first(event, None)
    # a restart: the rest is handled by a new materialiser resuming from the store
    second = InteractionMaterializer(streamed, recent=recent, engagement=engagement)
    second.handle(events[half + 20 :])
    batched = new_store()
    report = backfill_interactions(db, batched, recent=recent, engagement=engagement)

    assert report.written == {"user_recent_items": len({i.user_id for i in batch}),
                              "listing_engagement": len({i.listing_id for i in batch if i.event in ("view", "click")})}
    assert_same_rows(streamed, batched, recent, users + ["nobody"])
    assert_same_rows(streamed, batched, engagement, listings + ["nothing"])


def insert_transactions(db: Database, rng: random.Random, n: int) -> list[Observation]:
    pools: dict[str, list[str | None]] = {
        "user": [f"u{i}" for i in range(12)],
        "instrument": [f"card{i}" for i in range(8)],
        "device": [f"dev{i}" for i in range(6)] + [None],
        "ip": [f"10.0.0.{i}" for i in range(5)],
        "email_domain": ["mail.test", "corp.test", "free.test", None],
    }
    rows, obs = [], []
    for i in range(n):
        # bursts inside an hour plus a spread over three days, so both windows bite
        at = random_time(rng, 1.5, timedelta(milliseconds=1)) + timedelta(hours=rng.choice([0, 0, 20, 40, 47, 70]))
        keys = {kind: rng.choice(pool) for kind, pool in pools.items()}
        amount = rng.randrange(100, 100_000)
        rows.append(
            t.Transaction(
                id=f"t{i}", user_id=keys["user"], amount_minor=amount, currency="EUR",
                instrument_fingerprint=keys["instrument"], device_id=keys["device"], ip=keys["ip"],
                email_domain=keys["email_domain"], timestamp=at,
            )
        )
        obs.append(Observation(f"t{i}", keys, float(amount), int(at.timestamp() * 1000)))
    with db.session() as s:
        s.add_all(rows)
    return obs


def test_streaming_and_batch_transaction_velocity_agree(db: Database) -> None:
    rng = random.Random(11)
    obs = insert_transactions(db, rng, 600)
    spec = transaction_velocity()
    streamed, batched = new_store(), new_store()
    m = VelocityMaterializer(streamed, spec)
    shuffled = obs[:]
    rng.shuffle(shuffled)
    for start in range(0, len(shuffled), 37):
        m.observe(shuffled[start : start + 37])
    backfill_velocity(export_transactions(db), batched, spec)
    for kind, view in spec.views.items():
        keys = sorted({o.keys[kind] for o in obs if o.keys[kind]})  # type: ignore[type-var]
        assert_same_rows(streamed, batched, view, keys)  # type: ignore[arg-type]
    assert set(TRANSACTION_KEYS) == set(spec.views)


def test_streaming_and_batch_order_velocity_agree(db: Database) -> None:
    rng = random.Random(5)
    with db.session() as s:
        s.add(t.Seller(id="s1", name="Seller"))
    rows = [
        t.Order(id=f"o{i}", user_id=f"u{rng.randrange(8)}", seller_id="s1", total_minor=rng.randrange(1, 9999),
                currency="EUR", created_at=random_time(rng, 2) + timedelta(hours=rng.choice([0, 10, 30])))
        for i in range(150)
    ]
    events = [
        CloudEvent.create(
            OrderPlaced(order_id=r.id, user_id=r.user_id, seller_id="s1", total_minor=r.total_minor,
                        currency="EUR", lines=[]),
            "/test",
            time=r.created_at,
        )
        for r in rows
    ]
    with db.session() as s:
        s.add_all(rows)
    spec = order_velocity()
    streamed, batched = new_store(), new_store()
    rng.shuffle(events)
    VelocityMaterializer(streamed, spec).handle(events)
    backfill_velocity(export_orders(db), batched, spec)
    assert_same_rows(streamed, batched, spec.views["user"], [f"u{i}" for i in range(8)])


def test_a_materialiser_primed_from_the_database_continues_exactly(db: Database) -> None:
    rng = random.Random(3)
    obs = sorted(insert_transactions(db, rng, 300), key=lambda o: o.ts_ms)
    spec = transaction_velocity(["user", "instrument"])
    history, live = obs[:250], obs[250:]
    cut = datetime.fromtimestamp(history[-1].ts_ms / 1000, UTC)
    # The uninterrupted materialiser saw everything.
    uninterrupted = new_store()
    VelocityMaterializer(uninterrupted, spec).observe(obs)
    # The restarted one rebuilds its windows from the last 24 h of the table, then sees the rest.
    restarted = new_store()
    m = VelocityMaterializer(restarted, spec)
    recent_rows = export_transactions(db, until=cut, since=since(cut, max(spec.windows)))
    m.prime(observations(recent_rows, list(spec.views)))
    m.observe(live)
    for kind, view in spec.views.items():
        keys = sorted({o.keys[kind] for o in live if o.keys[kind]})  # type: ignore[type-var]
        assert_same_rows(uninterrupted, restarted, view, keys)  # type: ignore[arg-type]
