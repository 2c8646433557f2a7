"""1,000 concurrent orders for the 100 units of one listing: exactly 100 complete, the rest
fail cleanly as out of stock with nothing held, charged or shipped."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, insert, select
from wf_support import Runtime, Sandboxes, inventory, workflow_settings

from marketpilot.domain.entities import OrderIn, OrderLineIn
from marketpilot.platform import durable
from marketpilot.platform.db import schema as t
from marketpilot.workflows import engine as workflows_engine
from marketpilot.workflows.engine import start_order

ORDERS = 1_000


@pytest.fixture
def busy(runtime: Runtime, sandboxes: Sandboxes) -> Iterator[None]:
    installation = workflows_engine.install(
        runtime, workflow_settings(sandboxes.payment_server, sandboxes.carrier_server, order_concurrency=64),
        subscribe=False,
    )
    durable.launch(runtime.settings, executor_id=f"test-{uuid.uuid4().hex[:8]}", polling_interval=0.05)
    yield
    durable.shutdown()
    installation.close()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_thousand_orders_for_a_hundred_units_sell_exactly_a_hundred(
    runtime: Runtime, sandboxes: Sandboxes, busy: None
) -> None:
    # Placement itself only checks availability (stock is reserved by the workflow), so all
    # 1,000 are accepted before any runs; the first placed through the service, the rest in bulk.
    runtime.orders.place(OrderIn(id="c0000", user_id="u0", lines=[OrderLineIn(listing_id="l1", quantity=1)]))
    with runtime.db.session() as s:
        rows = [{"id": f"c{i:04d}", "user_id": f"u{i}", "seller_id": "s1", "status": "placed", "total_minor": 1000,
                 "currency": "EUR"} for i in range(1, ORDERS)]
        s.execute(insert(t.Order), rows)
        s.execute(insert(t.OrderLine), [{"order_id": r["id"], "listing_id": "l1", "quantity": 1, "unit_price_minor": 1000}
                                        for r in rows])
    handles = [start_order(f"c{i:04d}") for i in range(ORDERS)]
    results = [h.get_result(polling_interval_sec=0.1) for h in handles]

    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes == Counter({"shipped": 100, "out_of_stock": ORDERS - 100})
    assert inventory(runtime.db) == (0, 0)
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(t.CheckoutLock)) == 0
        statuses = Counter(s.scalars(select(t.Order.status)))
    assert statuses == Counter({"shipped": 100, "failed": ORDERS - 100})
    records = sandboxes.payments.records()
    shipped = {r["order_id"] for r in results if r["outcome"] == "shipped"}
    assert {c["reference"] for c in records["captures"]} == shipped and len(records["captures"]) == 100
    assert len(sandboxes.carrier.records()["labels"]) == 100
