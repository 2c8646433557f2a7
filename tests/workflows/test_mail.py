"""Buyers' order e-mails: a shipped order's notification reaches a real SMTP server on
loopback (aiosmtpd), once, with the order's facts; refused recipients fail at once, a server
that is down or answers 4xx is retried with backoff; buyers without an address get nothing."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from wf_support import Runtime, Sandboxes, place, run_senders_at_once, workflow_settings

from marketpilot.platform.config import ConfigError
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import EventBus
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.dispatcher import Dispatcher
from marketpilot.workflows.engine import Installation, start_order
from marketpilot.workflows.events import OrderNotification
from marketpilot.workflows.mail import (
    EMAIL_CONSUMER,
    EVENT_HEADER,
    EmailSender,
    check_settings,
    on_notification,
    render,
)
from marketpilot.workflows.settings import WorkflowSettings
from marketpilot.workflows.tables import EmailDelivery


class MailServer:
    """An SMTP server on loopback that keeps what it accepts; `rcpt_reply` (e.g. '550 ...')
    refuses recipients, `mail_reply` the sender."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.rcpt_reply: str | None = None
        self.mail_reply: str | None = None
        server = self

        class Handler:
            async def handle_MAIL(self, _server: Any, _session: Any, envelope: Any, address: str,  # noqa: N802
                                  options: Any) -> str:
                if server.mail_reply is not None:
                    return server.mail_reply
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_RCPT(self, _server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                                  _options: Any) -> str:
                if server.rcpt_reply is not None:
                    return server.rcpt_reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                server.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 Message accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port())
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.controller.port}"

    def close(self) -> None:
        self.controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer()
    yield server
    server.close()


def _settings(url: str, **overrides: Any) -> WorkflowSettings:
    return WorkflowSettings(email_smtp_url=url, email_from="Shop <orders@shop.example>", email_max_attempts=3,
                            email_retry_base_seconds=60, email_timeout=5, **overrides)


def _buyer(runtime: Runtime, user_id: str = "u1", address: str | None = "ana@example.com") -> None:
    with runtime.db.session() as s:
        s.merge(t.User(id=user_id, region="EU", email=address))


def _notify(runtime: Runtime, user: str = "u1", channel: str = "email") -> CloudEvent:
    """Queue one notification as the consumer does, in a delivery transaction."""
    event = CloudEvent.create(OrderNotification(
        order_id="o9", channel=channel, recipient=f"user:{user}", template="order_shipped",
        data={"tracking_number": "TRK1", "total_minor": 2599, "currency": "EUR", "payment_id": "pi_1"}), "test")
    with runtime.db.session() as s:
        on_notification(event, s)
    return event


def _delivery(runtime: Runtime, delivery_id: str) -> EmailDelivery:
    with runtime.db.read() as s:
        row = s.get(EmailDelivery, delivery_id)
        assert row is not None
        return row


def test_an_order_email_is_sent_once_with_the_orders_facts(runtime: Runtime, mail_server: MailServer) -> None:
    _buyer(runtime)
    event = _notify(runtime)
    with runtime.db.session() as s:  # a redelivered event queues nothing more
        on_notification(event, s)
    _notify(runtime, channel="webhook")  # the seller's webhook is not this module's
    sender = EmailSender(runtime.db, _settings(mail_server.url))
    try:
        assert sender.run_once() == 1
        assert sender.run_once() == 0  # delivered: not sent again
    finally:
        sender.close()
    [message] = mail_server.messages
    assert mail_server.envelopes == [("orders@shop.example", ["ana@example.com"])]
    assert (message["To"], message["From"], message["Subject"]) == (
        "ana@example.com", "Shop <orders@shop.example>", "Your order o9 has shipped")
    assert (message["Message-ID"], message[EVENT_HEADER]) == (f"<{event.id}@marketpilot>", event.id)
    body = message.get_content()
    assert "25.99 EUR" in body and "Tracking number: TRK1" in body
    row = _delivery(runtime, event.id)
    assert (row.status, row.attempts, row.last_status_code, row.delivered_at is not None) == ("delivered", 1, 250, True)


def test_a_buyer_without_an_address_gets_nothing(runtime: Runtime) -> None:
    _buyer(runtime, address=None)
    assert _notify(runtime) is not None
    _notify(runtime, user="nobody")  # not even a users row
    with runtime.db.read() as s:
        assert list(s.scalars(select(EmailDelivery))) == []


def test_a_server_that_is_down_is_retried_with_backoff_then_the_email_goes(
        runtime: Runtime, mail_server: MailServer) -> None:
    _buyer(runtime)
    event = _notify(runtime)
    down = EmailSender(runtime.db, _settings(f"smtp://127.0.0.1:{_free_port()}"))  # nobody listens there
    try:
        assert down.run_once() == 1
    finally:
        down.close()
    row = _delivery(runtime, event.id)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert row.last_error is not None and "refused" in row.last_error.lower()
    assert 55 < (row.next_attempt_at - utcnow()).total_seconds() <= 60  # the base wait
    up = EmailSender(runtime.db, _settings(mail_server.url))
    try:
        assert up.run_once() == 0  # not due yet
        assert up.run_once(now=utcnow() + timedelta(seconds=61)) == 1
    finally:
        up.close()
    assert len(mail_server.messages) == 1
    assert (_delivery(runtime, event.id).status, _delivery(runtime, event.id).attempts) == ("delivered", 2)


def test_a_temporary_refusal_is_retried_and_a_permanent_one_fails_at_once(
        runtime: Runtime, mail_server: MailServer) -> None:
    _buyer(runtime)
    sender = EmailSender(runtime.db, _settings(mail_server.url))
    try:
        mail_server.rcpt_reply = "451 4.3.0 try again later"
        later = _notify(runtime)
        assert sender.run_once() == 1
        row = _delivery(runtime, later.id)
        assert (row.status, row.last_status_code) == ("pending", 451)
        assert sender.run_once(now=utcnow() + timedelta(seconds=61)) == 1
        assert sender.run_once(now=utcnow() + timedelta(seconds=200)) == 1
        row = _delivery(runtime, later.id)
        assert (row.status, row.attempts) == ("failed", 3)  # max_attempts

        mail_server.rcpt_reply = "550 5.1.1 no such mailbox"
        bounced = _notify(runtime)
        assert sender.run_once() == 1
        row = _delivery(runtime, bounced.id)
        assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 550)
        assert row.last_error is not None and "no such mailbox" in row.last_error
    finally:
        sender.close()
    assert mail_server.messages == []


def test_a_refused_sender_address_is_retried_not_failed_and_goes_once_it_is_accepted(
        runtime: Runtime, mail_server: MailServer) -> None:
    # a 5xx to MAIL FROM says EMAIL_FROM is wrong: true of every message, so none is given up
    _buyer(runtime)
    sender = EmailSender(runtime.db, _settings(mail_server.url))
    try:
        mail_server.mail_reply = "553 5.7.1 sender address not allowed"
        event = _notify(runtime)
        assert sender.run_once() == 1
        row = _delivery(runtime, event.id)
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 553)
        assert row.last_error is not None and "sender" in row.last_error and "not allowed" in row.last_error
        mail_server.mail_reply = None  # the operator fixed the address
        assert sender.run_once(now=utcnow() + timedelta(seconds=61)) == 1
    finally:
        sender.close()
    assert (_delivery(runtime, event.id).status, _delivery(runtime, event.id).attempts) == ("delivered", 2)
    assert len(mail_server.messages) == 1


def test_two_senders_at_once_send_each_email_once(runtime: Runtime, mail_server: MailServer) -> None:
    _buyer(runtime)
    events = [_notify(runtime) for _ in range(20)]
    sent = run_senders_at_once([EmailSender(runtime.db, _settings(mail_server.url)) for _ in range(2)])
    assert sum(sent) == 20
    assert sorted(m[EVENT_HEADER] for m in mail_server.messages) == sorted(e.id for e in events)


def test_settings_are_checked_before_anything_is_sent() -> None:
    check_settings(WorkflowSettings())  # unset: e-mail off
    for bad in ("http://mail.example.com", "smtp://", "mail.example.com:25", "smtp://mail.example.com:smtp",
                "smtps://mail.example.com:99999"):
        with pytest.raises(ConfigError, match="EMAIL_SMTP_URL"):
            check_settings(WorkflowSettings(email_smtp_url=bad, email_from="a@b.example"))
    with pytest.raises(ConfigError, match="EMAIL_FROM"):
        check_settings(WorkflowSettings(email_smtp_url="smtp+starttls://mail.example.com:587"))
    with pytest.raises(ConfigError, match="not set"):
        EmailSender(None, WorkflowSettings())  # type: ignore[arg-type]


def test_the_template_formats_the_total_in_major_units() -> None:
    subject, body = render("order_shipped", "o1", {"tracking_number": "T", "total_minor": 1500, "currency": "JPY"})
    assert subject == "Your order o1 has shipped" and "(1500 JPY)" in body
    with pytest.raises(KeyError):
        render("no_such_template", "o1", {})


def test_a_shipped_orders_email_reaches_the_buyers_mail_server(
    runtime: Runtime, sandboxes: Sandboxes, installed: Installation, mail_server: MailServer
) -> None:
    """End to end: the saga ships the order, the outbox delivers its notification event to
    the e-mail consumer, the sender hands it to the SMTP server."""
    _buyer(runtime)
    place(runtime, "w1")
    result = start_order("w1").get_result()
    assert result["state"] == "completed"
    bus = EventBus()
    bus.subscribe(EMAIL_CONSUMER, [OrderNotification.TYPE], on_notification)
    Dispatcher(runtime.db, bus).run_once()
    sender = EmailSender(runtime.db, workflow_settings(
        sandboxes.payment_server, sandboxes.carrier_server, email_smtp_url=mail_server.url,
        email_from="orders@shop.example"))
    try:
        assert sender.run_once() == 1
    finally:
        sender.close()
    [message] = mail_server.messages
    assert message["To"] == "ana@example.com" and message["Subject"] == "Your order w1 has shipped"
    assert f"Tracking number: {result['tracking_number']}" in message.get_content()
    with runtime.db.read() as s:
        assert [r.status for r in s.scalars(select(EmailDelivery))] == ["delivered"]


def test_install_subscribes_and_starts_the_email_sender_only_when_smtp_is_set(
        runtime: Runtime, sandboxes: Sandboxes, mail_server: MailServer) -> None:
    from marketpilot.workflows import engine

    base = workflow_settings(sandboxes.payment_server, sandboxes.carrier_server)
    with pytest.raises(ConfigError, match="EMAIL_FROM"):
        engine.install(runtime, base.model_copy(update={"email_smtp_url": mail_server.url}), bus=EventBus())
    for settings, expected in ((base, False), (base.model_copy(update={
            "email_smtp_url": mail_server.url, "email_from": "orders@shop.example"}), True)):
        bus = EventBus()
        installation = engine.install(runtime, settings, bus=bus)
        try:
            assert ([s.name for s in bus if s.name == EMAIL_CONSUMER] != []) is expected
            assert (installation.emails is not None) is expected
        finally:
            installation.close()


def test_finished_deliveries_are_purged_after_the_retention_and_pending_ones_kept(
        runtime: Runtime, mail_server: MailServer) -> None:
    _buyer(runtime)
    _notify(runtime)  # delivered below
    refused, waiting = _notify(runtime), _notify(runtime)
    sender = EmailSender(runtime.db, _settings(mail_server.url, delivery_retention_days=10))
    try:
        assert sender.run_once() == 3
        with runtime.db.session() as s:
            s.get(EmailDelivery, refused.id).status = "failed"  # type: ignore[union-attr]
            s.get(EmailDelivery, waiting.id).status = "pending"  # type: ignore[union-attr]
        assert sender.purge(now=utcnow() + timedelta(days=9)) == 0  # inside the retention
        assert sender.purge(now=utcnow() + timedelta(days=11), batch=1) == 2
    finally:
        sender.close()
    with runtime.db.read() as s:
        assert [r.id for r in s.scalars(select(EmailDelivery))] == [waiting.id]
