"""A sold-out listing is never served after its inventory event, with requests in flight.

Reader threads ask for slates as fast as they can while a writer sells listings out one by
one (and takes checkout locks on others). Each request notes the monotonic time it started;
each change notes when its transaction committed. A slate that holds a listing whose change
committed before the request started is a violation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketpilot.domain.entities import CheckoutLockIn, ListingIn, SellerIn
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.recommend.service import RecommendationRequest, Strategy
from marketpilot.runtime import Runtime

N = 60
READERS = 4


@pytest.fixture
def rt(db: Database, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(database_url=db.url, home=tmp_path / "home"), migrate=False)
    runtime.sellers.create(SellerIn(id="s1", name="Shop"))
    for i in range(N):
        runtime.listings.create(
            ListingIn(id=f"l{i:03d}", seller_id="s1", title=f"Item {i}", category_path="c", price_minor=100,
                      currency="EUR", quantity=1)
        )
    yield runtime
    runtime.close()


def test_sold_out_listing_is_never_served_after_its_event_under_concurrent_requests(rt: Runtime) -> None:
    svc = rt.recommendations
    svc.warm()
    gone_at: dict[str, float] = {}
    served: list[tuple[float, list[str]]] = []
    errors: list[BaseException] = []
    done = threading.Event()
    lock = threading.Lock()

    def reader(n: int) -> None:
        try:
            count = 0
            while not done.is_set():
                count += 1  # a new session each time: nothing is hidden as "already seen"
                started = time.monotonic()
                slate = svc.recommend(RecommendationRequest(k=N, session_id=f"s{n}-{count}"))
                assert slate.strategy == Strategy.MODEL_UNAVAILABLE
                assert len(slate.items) >= 5
                with lock:
                    served.append((started, [i.listing_id for i in slate.items]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    for th in threads:
        th.start()
    try:
        for i in range(N - 5):  # leave a few in stock so slates are never empty
            lid = f"l{i:03d}"
            if i % 3 == 0:
                rt.inventory.lock(lid, CheckoutLockIn(quantity=1, holder=f"cart-{i}"))  # all stock held
            else:
                rt.inventory.set_quantity(lid, 0)
            gone_at[lid] = time.monotonic()
            time.sleep(0.002)
    finally:
        done.set()
        for th in threads:
            th.join()
    assert not errors, errors
    assert len(served) > N  # the readers really overlapped the writes
    violations = [
        (lid, started - gone_at[lid])
        for started, items in served
        for lid in items
        if lid in gone_at and gone_at[lid] < started
    ]
    assert violations == []
    after = svc.recommend(RecommendationRequest(k=N, session_id="late"))
    assert {i.listing_id for i in after.items} == {f"l{i:03d}" for i in range(N - 5, N)}
