"""Sellers' webhooks: an order's notification reaches the seller's endpoint over real HTTP,
signed and keyed by its event id; failures are retried with backoff and then given up;
sellers without an endpoint get nothing; private addresses are refused unless allowed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from wf_support import Runtime, Sandboxes, place, run_senders_at_once, workflow_settings

from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import EventBus
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.dispatcher import Dispatcher
from marketpilot.workflows.engine import Installation, start_order
from marketpilot.workflows.events import OrderNotification
from marketpilot.workflows.settings import WorkflowSettings
from marketpilot.workflows.tables import WebhookDelivery
from marketpilot.workflows.webhooks import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    WEBHOOK_CONSUMER,
    WebhookIn,
    WebhookSender,
    WebhookService,
    check_url,
    on_notification,
    verify,
)


class Receiver:
    """A seller's endpoint on loopback: records what it is sent, answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/marketpilot"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


SETTINGS = WorkflowSettings(webhook_allow_private_hosts=True, webhook_retry_base_seconds=60, webhook_max_attempts=3)


def _notify(runtime: Runtime, seller: str = "s1", channel: str = "webhook") -> CloudEvent:
    """Queue one notification as the consumer does, in a delivery transaction."""
    event = CloudEvent.create(OrderNotification(order_id="o9", channel=channel, recipient=f"seller:{seller}",
                                                template="order_shipped", data={"tracking_number": "TRK1"}), "test")
    with runtime.db.session() as s:
        on_notification(event, s)
    return event


def _delivery(runtime: Runtime, delivery_id: str) -> WebhookDelivery:
    with runtime.db.read() as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


def test_a_notification_is_posted_signed_and_marked_delivered(runtime: Runtime, receiver: Receiver) -> None:
    secret = WebhookService(runtime.db, SETTINGS).register("s1", WebhookIn(url=receiver.url)).secret
    assert secret is not None and secret.startswith("whsec_")
    event = _notify(runtime)
    _notify(runtime, channel="email")  # the buyer's e-mail is not this module's
    sender = WebhookSender(runtime.db, SETTINGS)
    try:
        assert sender.run_once() == 1
        assert sender.run_once() == 0  # delivered: not sent again
    finally:
        sender.close()
    [(headers, body)] = receiver.requests
    assert headers[EVENT_HEADER] == event.id
    assert verify(secret, headers[SIGNATURE_HEADER], body)
    assert not verify(secret, headers[SIGNATURE_HEADER], body + b" ")  # tampered
    assert not verify("whsec_other", headers[SIGNATURE_HEADER], body)
    payload = json.loads(body)
    assert (payload["id"], payload["type"]) == (event.id, "order.notification")
    assert payload["data"] == {"order_id": "o9", "template": "order_shipped", "tracking_number": "TRK1"}
    row = _delivery(runtime, event.id)
    assert (row.status, row.attempts, row.last_status_code, row.delivered_at is not None) == ("delivered", 1, 200, True)
    retention = WebhookSender(runtime.db, SETTINGS)
    try:  # kept for the retention (30 days by default), then purged
        assert retention.purge(now=utcnow() + timedelta(days=29)) == 0
        assert retention.purge(now=utcnow() + timedelta(days=31)) == 1
    finally:
        retention.close()


def test_two_senders_at_once_post_each_delivery_once(runtime: Runtime, receiver: Receiver) -> None:
    """Two workers' senders reading the same due rows: each attempt is claimed by one."""
    WebhookService(runtime.db, SETTINGS).register("s1", WebhookIn(url=receiver.url))
    events = [_notify(runtime) for _ in range(20)]
    sent = run_senders_at_once([WebhookSender(runtime.db, SETTINGS), WebhookSender(runtime.db, SETTINGS)])
    assert sum(sent) == 20
    assert sorted(h[EVENT_HEADER] for h, _ in receiver.requests) == sorted(e.id for e in events)
    with runtime.db.read() as s:
        assert {r.status for r in s.scalars(select(WebhookDelivery))} == {"delivered"}


def test_failures_are_retried_with_backoff_then_given_up(runtime: Runtime, receiver: Receiver) -> None:
    WebhookService(runtime.db, SETTINGS).register("s1", WebhookIn(url=receiver.url))
    receiver.status = 503
    event = _notify(runtime)
    sender = WebhookSender(runtime.db, SETTINGS)
    try:
        assert sender.run_once() == 1
        row = _delivery(runtime, event.id)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 503")
        wait = (row.next_attempt_at - utcnow()).total_seconds()
        assert 55 < wait <= 60  # the base wait
        assert sender.run_once() == 0  # not due yet
        assert sender.run_once(now=utcnow() + timedelta(seconds=61)) == 1
        row = _delivery(runtime, event.id)
        assert row.attempts == 2 and 115 < (row.next_attempt_at - utcnow()).total_seconds() <= 120  # doubled
        assert sender.run_once(now=utcnow() + timedelta(seconds=200)) == 1
        row = _delivery(runtime, event.id)
        assert (row.status, row.attempts) == ("failed", 3)  # max_attempts
        assert sender.run_once(now=utcnow() + timedelta(days=1)) == 0
    finally:
        sender.close()
    assert len(receiver.requests) == 3
    failed = WebhookService(runtime.db, SETTINGS).deliveries("s1", status="failed")
    assert [d.id for d in failed] == [event.id]


def test_a_seller_without_an_endpoint_gets_nothing_and_a_removed_one_fails_its_pending_deliveries(
        runtime: Runtime, receiver: Receiver) -> None:
    nothing = _notify(runtime)
    with runtime.db.read() as s:
        assert s.get(WebhookDelivery, nothing.id) is None
    service = WebhookService(runtime.db, SETTINGS)
    service.register("s1", WebhookIn(url=receiver.url))
    queued = _notify(runtime)
    service.delete("s1")
    with pytest.raises(NotFound):
        service.get("s1")
    sender = WebhookSender(runtime.db, SETTINGS)
    try:
        sender.run_once()
    finally:
        sender.close()
    row = _delivery(runtime, queued.id)
    assert (row.status, row.last_error) == ("failed", "the seller removed its webhook")
    assert receiver.requests == []


def test_registration_checks_the_url_the_seller_and_the_callers_scope(runtime: Runtime) -> None:
    strict = WebhookService(runtime.db, WorkflowSettings())
    for bad in ("ftp://example.com/x", "example.com/x", "https://user:pw@example.com/", "http://localhost:8080/",
                "http://127.0.0.1/", "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data",
                "http://[::1]/"):
        with pytest.raises(InvalidInput):
            strict.register("s1", WebhookIn(url=bad))
    assert check_url("https://hooks.example.com/mp", allow_private=False) == "https://hooks.example.com/mp"
    with pytest.raises(NotFound):
        strict.register("nope", WebhookIn(url="https://hooks.example.com/mp"))
    with pytest.raises(NotFound):  # a merchant of another seller
        strict.register("s1", WebhookIn(url="https://hooks.example.com/mp"), scope="s2")
    first = strict.register("s1", WebhookIn(url="https://hooks.example.com/mp"), scope="s1")
    again = strict.register("s1", WebhookIn(url="https://hooks.example.com/v2"))
    assert first.secret != again.secret  # registering again rotates the secret
    shown = strict.get("s1", scope="s1")
    assert (shown.url, shown.secret, shown.created_at) == ("https://hooks.example.com/v2", None, first.created_at)


def test_a_shipped_orders_notification_reaches_the_sellers_endpoint(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation, receiver: Receiver
) -> None:
    """End to end: the saga ships the order, the outbox delivers its notification event to
    the webhook consumer, the sender POSTs it."""
    secret = WebhookService(runtime.db, SETTINGS).register("s1", WebhookIn(url=receiver.url)).secret
    assert secret is not None
    place(runtime, "w1")
    assert start_order("w1").get_result()["state"] == "completed"
    bus = EventBus()
    bus.subscribe(WEBHOOK_CONSUMER, [OrderNotification.TYPE], on_notification)
    Dispatcher(runtime.db, bus).run_once()
    sender = WebhookSender(runtime.db, workflow_settings(sandboxes.payment_server, sandboxes.carrier_server,
                                                         webhook_allow_private_hosts=True))
    try:
        assert sender.run_once() == 1
    finally:
        sender.close()
    [(headers, body)] = receiver.requests
    assert verify(secret, headers[SIGNATURE_HEADER], body)
    data = json.loads(body)["data"]
    assert data["order_id"] == "w1"
    with runtime.db.read() as s:
        assert [r.status for r in s.scalars(select(WebhookDelivery))] == ["delivered"]
