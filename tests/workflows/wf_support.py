"""Shared set-up of the workflows tests: a marketplace with stock, and sandbox providers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from marketpilot.domain.entities import ListingIn, OrderIn, OrderLineIn, SellerIn
from marketpilot.marketplace import InventoryService, ListingService, OrderService, SellerService
from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.workflows.outbound import OutboundSender
from marketpilot.workflows.sandbox.carrier import CarrierSandbox
from marketpilot.workflows.sandbox.payment import PaymentSandbox
from marketpilot.workflows.sandbox.server import SandboxServer
from marketpilot.workflows.settings import WorkflowSettings
from marketpilot.workflows.tables import WorkflowRun, WorkflowStep

PRICE = 1_000


def settings_for(home: Path, database_url: str) -> Settings:
    return Settings(home=home, database_url=database_url, auth_required=False)


class Shop:
    """The part of a runtime the workflows need (built directly, so these tests do not
    depend on every capability the full Runtime wires up)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database.from_settings(settings)
        self.db.migrate()
        self.source = settings.event_source
        self.sellers = SellerService(self.db)
        self.listings = ListingService(self.db, self.source)
        self.inventory = InventoryService(self.db, self.source)
        self.orders = OrderService(self.db, self.source)

    def close(self) -> None:
        self.db.dispose()


Runtime = Shop


def stock_marketplace(runtime: Shop, *, listings: int = 1, quantity: int = 100) -> list[str]:
    runtime.sellers.create(SellerIn(id="s1", name="Seller One", country="DE"))
    ids = []
    for i in range(listings):
        listing_id = f"l{i + 1}"
        runtime.listings.create(ListingIn(id=listing_id, seller_id="s1", title=f"Item {i}", category_path="toys",
                                          price_minor=PRICE, currency="EUR", quantity=quantity))
        ids.append(listing_id)
    return ids


def place(runtime: Runtime, order_id: str, listing_id: str = "l1", quantity: int = 1, user: str = "u1") -> None:
    runtime.orders.place(OrderIn(id=order_id, user_id=user, lines=[OrderLineIn(listing_id=listing_id, quantity=quantity)],
                                 shipping_region="FR"))


def workflow_settings(payment: SandboxServer, carrier: SandboxServer, **overrides: Any) -> WorkflowSettings:
    values: dict[str, Any] = {"payment_url": payment.url, "carrier_url": carrier.url, "retry_base_delay": 0.01,
                              "retry_max_delay": 0.2, "breaker_reset_seconds": 0.2, "queue_polling_interval": 0.02,
                              **overrides}
    return WorkflowSettings(**values)


class Sandboxes:
    def __init__(self) -> None:
        self.payments = PaymentSandbox()
        self.carrier = CarrierSandbox()
        self.payment_server = SandboxServer(self.payments).start()
        self.carrier_server = SandboxServer(self.carrier).start()

    def stop(self) -> None:
        self.payment_server.stop()
        self.carrier_server.stop()


def run_state(db: Database, workflow_id: str) -> WorkflowRun:
    with db.read() as s:
        run = s.get(WorkflowRun, workflow_id)
        assert run is not None, f"no run {workflow_id}"
        return run


def steps(db: Database, workflow_id: str) -> list[WorkflowStep]:
    with db.read() as s:
        return list(s.scalars(select(WorkflowStep).where(WorkflowStep.workflow_id == workflow_id).order_by(WorkflowStep.id)))


def inventory(db: Database, listing_id: str = "l1") -> tuple[int, int]:
    with db.read() as s:
        row = s.get(t.Inventory, listing_id)
        assert row is not None
        return row.quantity, row.reserved


def outbox_count(db: Database, event_type: str, subject: str | None = None) -> int:
    q = select(func.count()).select_from(t.OutboxEvent).where(t.OutboxEvent.type == event_type)
    if subject is not None:
        q = q.where(t.OutboxEvent.subject == subject)
    with db.read() as s:
        return int(s.scalar(q) or 0)


def run_senders_at_once(senders: list[OutboundSender]) -> list[int]:
    """One `run_once` pass of each sender, all started together (as several workers' senders
    reading the same due rows); what each attempted. Closes the senders."""
    start = threading.Barrier(len(senders))
    sent: list[int] = []

    def run(sender: OutboundSender) -> None:
        start.wait()
        sent.append(sender.run_once())

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for sender in senders:
            sender.close()
    return sent
