"""Buyers' order e-mails: from the saga's notification to the buyer's mail server.

The order saga writes an ``OrderNotification`` (channel ``email``, recipient ``user:<id>``)
through the outbox in the transaction that ships the order. With
``MARKETPILOT_WORKFLOWS_EMAIL_SMTP_URL`` set, this module takes it from there:

1. **Queueing** (`on_notification`, consumer ``workflows.email``): in the event's own
   delivery transaction, an ``email_deliveries`` row keyed by the event id, rendered then
   (subject and plain-text body from `TEMPLATES`, the address the buyer has then:
   ``users.email``, from the import or the API). A buyer without an address gets none.
2. **Sending** (`EmailSender`, a thread of ``marketpilot worker``; claims, retries with
   backoff and give-ups as `marketpilot.workflows.outbound` describes): one SMTP session per
   pass, ``Message-ID: <event id@marketpilot>`` (a buyer's mail client can drop a duplicate of
   an at-least-once delivery) and the ``Marketpilot-Event-Id`` header. A refused recipient
   or a permanent (5xx) answer to the message fails the row at once; connection errors,
   4xx answers, authentication failures and a refused sender address (``EMAIL_FROM``: the
   operator's to fix, and true of every message alike) are retried.

smtplib (the standard library) speaks SMTP; nothing is written by hand here but the
templates.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketpilot.domain.entities import CURRENCY_EXPONENT
from marketpilot.platform.config import ConfigError
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.workflows.events import OrderNotification
from marketpilot.workflows.outbound import Attempt, OutboundSender, Schedule
from marketpilot.workflows.settings import WorkflowSettings
from marketpilot.workflows.tables import EmailDelivery

EMAIL_CONSUMER = "workflows.email"
EVENT_HEADER = "Marketpilot-Event-Id"
SCHEMES = ("smtp", "smtp+starttls", "smtps")

# template name -> (subject, body); fields from the notification's data plus order_id and
# total (the amount in major units with its currency).
TEMPLATES: dict[str, tuple[str, str]] = {
    "order_shipped": (
        "Your order {order_id} has shipped",
        "Hello,\n\n"
        "your order {order_id} ({total}) is on its way.\n"
        "Tracking number: {tracking_number}\n\n"
        "Thank you for your order.\n",
    ),
}


def render(template: str, order_id: str, data: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of `template` for one order; a template we lack is a programming
    error (the saga names them), so it raises."""
    subject, body = TEMPLATES[template]
    fields = {k: v for k, v in data.items() if isinstance(v, str | int | float)}
    fields["order_id"] = order_id
    currency = str(data.get("currency", ""))
    if isinstance(data.get("total_minor"), int) and currency in CURRENCY_EXPONENT:
        exponent = CURRENCY_EXPONENT[currency]
        fields["total"] = f"{data['total_minor'] / 10 ** exponent:.{exponent}f} {currency}"
    fields.setdefault("total", "")
    fields.setdefault("tracking_number", "")
    return subject.format(**fields), body.format(**fields)


def on_notification(event: CloudEvent, session: Session) -> None:
    """Queue a buyer's order e-mail (consumer ``workflows.email``); a buyer without an
    address gets none."""
    note = event.payload()
    if not isinstance(note, OrderNotification) or note.channel != "email" or not note.recipient.startswith("user:"):
        return
    user_id = note.recipient.removeprefix("user:")
    address = session.scalar(select(t.User.email).where(t.User.id == user_id))
    if not address or session.get(EmailDelivery, event.id) is not None:
        return
    subject, body = render(note.template, note.order_id, note.data)
    session.add(EmailDelivery(
        id=event.id, user_id=user_id, order_id=note.order_id, to_address=address, template=note.template,
        subject=subject, body=body, status="pending", attempts=0, next_attempt_at=utcnow(),
    ))


def check_settings(settings: WorkflowSettings) -> None:
    """Raise `ConfigError` for an SMTP URL we cannot use or a missing From address."""
    url = settings.email_smtp_url
    if url is None:
        return
    parts = urlsplit(url)
    try:
        usable = parts.scheme in SCHEMES and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # the port is not a number in range
        usable = False
    if not usable:
        raise ConfigError(f"MARKETPILOT_WORKFLOWS_EMAIL_SMTP_URL: expected {', '.join(s + '://host:port' for s in SCHEMES)}, "
                          f"got {url!r}")
    if not settings.email_from:
        raise ConfigError("MARKETPILOT_WORKFLOWS_EMAIL_FROM must be set when MARKETPILOT_WORKFLOWS_EMAIL_SMTP_URL is")


class EmailSender(OutboundSender):
    """Sends due e-mails over SMTP (see the module docstring); `run_forever` is the worker's thread."""

    model = EmailDelivery
    name = "e-mail"

    def __init__(self, db: Database, settings: WorkflowSettings | None = None, *, batch: int = 50) -> None:
        self.settings = settings or WorkflowSettings.load()
        check_settings(self.settings)
        cfg = self.settings
        if cfg.email_smtp_url is None:
            raise ConfigError("MARKETPILOT_WORKFLOWS_EMAIL_SMTP_URL is not set: there is nowhere to send e-mail")
        # a row is claimed just before its attempt, which may open the pass's session first:
        # connect, TLS, login and the message's calls each get the timeout
        super().__init__(db, Schedule(cfg.email_max_attempts, cfg.email_retry_base_seconds,
                                      cfg.email_retry_max_seconds, cfg.email_poll_interval,
                                      lease_seconds=6 * cfg.email_timeout + 5,
                                      retention=timedelta(days=cfg.delivery_retention_days)), batch=batch)
        self._url = urlsplit(cfg.email_smtp_url)
        self._smtp: smtplib.SMTP | None = None

    def close(self) -> None:
        self._hang_up()

    def run_once(self, now: datetime | None = None) -> int:
        try:
            return super().run_once(now)
        finally:
            self._hang_up()  # one session per pass: an idle connection would be dropped anyway

    def due(self, now: datetime) -> Sequence[Any]:
        with self.db.read() as s:
            return list(s.execute(
                select(EmailDelivery.id, EmailDelivery.attempts, EmailDelivery.next_attempt_at,
                       EmailDelivery.to_address, EmailDelivery.subject, EmailDelivery.body)
                .where(EmailDelivery.status == "pending", EmailDelivery.next_attempt_at <= now)
                .order_by(EmailDelivery.next_attempt_at).limit(self.batch)))

    def send(self, row: Any) -> Attempt:
        message = EmailMessage()
        message["From"] = self.settings.email_from
        message["To"] = row.to_address
        message["Subject"] = row.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{row.id}@marketpilot>"
        message[EVENT_HEADER] = row.id
        message.set_content(row.body)
        try:  # one recipient: a refused one raises SMTPRecipientsRefused
            self._session().send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return Attempt(code, f"recipient refused: {code} {_text(reply)}"[:500], final=code >= 500)
        except smtplib.SMTPAuthenticationError as exc:
            self._hang_up()
            return Attempt(exc.smtp_code, f"authentication failed: {exc.smtp_code} {_text(exc.smtp_error)}"[:500])
        except smtplib.SMTPSenderRefused as exc:  # MAIL FROM refused: the settings, not this message
            self._hang_up()
            return Attempt(exc.smtp_code,
                           f"sender {exc.sender} refused: {exc.smtp_code} {_text(exc.smtp_error)}"[:500])
        except smtplib.SMTPResponseException as exc:
            self._hang_up()
            return Attempt(exc.smtp_code, f"{exc.smtp_code} {_text(exc.smtp_error)}"[:500], final=exc.smtp_code >= 500)
        except (smtplib.SMTPException, OSError) as exc:  # no answer: connection refused, dropped, timed out
            self._hang_up()
            return Attempt(None, f"{type(exc).__name__}: {exc}"[:500])
        return Attempt(250, None)

    def _session(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        cfg, url = self.settings, self._url
        host, timeout = url.hostname or "", cfg.email_timeout
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if url.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, url.port or 465, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, url.port or (587 if url.scheme == "smtp+starttls" else 25), timeout=timeout)
        try:
            if url.scheme == "smtp+starttls":
                smtp.starttls(context=context)
            if cfg.email_smtp_username:
                smtp.login(cfg.email_smtp_username, cfg.email_smtp_password or "")
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _hang_up(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
