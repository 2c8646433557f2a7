"""Seller webhooks: where a seller wants its order notifications, and their delivery.

The order saga writes an ``OrderNotification`` (channel ``webhook``, recipient
``seller:<id>``) through the outbox in the transaction that ships the order. This module
takes it from there:

1. **Registration** (`WebhookService`, ``PUT /v1/sellers/{id}/webhook``): an http(s) URL and a
   signing secret issued once (``whsec_...``; registering again rotates it). Literal private,
   loopback and link-local addresses are refused unless ``MARKETPILOT_WORKFLOWS_WEBHOOK_ALLOW_PRIVATE_HOSTS``
   is set (development, tests); at send time the host's resolved addresses are checked again.
2. **Queueing** (`on_notification`, consumer ``workflows.webhooks``): in the event's own
   delivery transaction a ``webhook_deliveries`` row keyed by the event id, so a notification
   is queued exactly once. No HTTP happens inside a database transaction: on SQLite that would
   hold the single writer for as long as the seller's server takes to answer.
3. **Sending** (`WebhookSender`, a thread of ``marketpilot worker``; claims, retries,
   give-ups and retention as `marketpilot.workflows.outbound` describes): due rows are
   POSTed as JSON with ``Marketpilot-Event-Id`` (the receiver's dedup key: delivery is at
   least once) and ``Marketpilot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
   "t.body">`` (`verify` checks one). A 2xx marks the row delivered; anything else is
   retried, and a ``failed`` row stays listed for the seller and the operator.

E-mail to buyers (channel ``email``) is `marketpilot.workflows.mail`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.workflows.events import OrderNotification
from marketpilot.workflows.outbound import Attempt, OutboundSender, Schedule
from marketpilot.workflows.settings import WorkflowSettings
from marketpilot.workflows.tables import SellerWebhook, WebhookDelivery

WEBHOOK_CONSUMER = "workflows.webhooks"
SIGNATURE_HEADER = "Marketpilot-Signature"
EVENT_HEADER = "Marketpilot-Event-Id"
SIGNATURE_TOLERANCE_SECONDS = 300
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookIn(BaseModel):
    model_config = {"extra": "forbid"}
    url: str = Field(min_length=1, max_length=2000, description="http(s) URL the notifications are POSTed to.")


class WebhookEndpoint(BaseModel):
    seller_id: str
    url: str
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="The signing secret: returned when registered (or rotated), never again.")


class WebhookDeliveryView(BaseModel):
    id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


# -- signing ---------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None,
           tolerance: float = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """What a seller's endpoint should check: the signature matches and is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


# -- where a host may be ---------------------------------------------------------------------


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL if a webhook may point at it; :class:`InvalidInput` saying why not."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("webhook url must be an absolute http or https URL")
    if parts.username or parts.password:
        raise InvalidInput("webhook url must not carry credentials")
    if not allow_private:
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidInput("webhook url must not point at this machine")
        try:
            private = _private(host)
        except ValueError:
            private = False  # a name: its addresses are checked when sending
        if private:
            raise InvalidInput("webhook url must not point at a private, loopback or link-local address")
    return url.strip()


def _resolves_privately(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # the POST fails on its own and is retried
    return any(_private(str(info[4][0])) for info in infos)


# -- registration ----------------------------------------------------------------------------


class WebhookService:
    """Sellers' endpoints and their deliveries; a merchant (``scope``) sees only its own."""

    def __init__(self, db: Database, settings: WorkflowSettings | None = None) -> None:
        self.db = db
        self.settings = settings or WorkflowSettings.load()

    @staticmethod
    def _seller(s: Session, seller_id: str, scope: str | None) -> None:
        if (scope is not None and scope != seller_id) or s.get(t.Seller, seller_id) is None:
            raise NotFound(f"seller {seller_id!r} not found")

    def register(self, seller_id: str, body: WebhookIn, *, scope: str | None = None) -> WebhookEndpoint:
        url = check_url(body.url, allow_private=self.settings.webhook_allow_private_hosts)
        secret = "whsec_" + secrets.token_urlsafe(24)
        now = utcnow()
        with self.db.session() as s:
            self._seller(s, seller_id, scope)
            row = s.get(SellerWebhook, seller_id)
            if row is None:
                row = SellerWebhook(seller_id=seller_id, url=url, secret=secret, created_at=now, updated_at=now)
                s.add(row)
            else:
                row.url, row.secret, row.updated_at = url, secret, now
            s.flush()
            return WebhookEndpoint(seller_id=seller_id, url=row.url, created_at=row.created_at,
                                   updated_at=row.updated_at, secret=secret)

    def get(self, seller_id: str, *, scope: str | None = None) -> WebhookEndpoint:
        with self.db.read() as s:
            self._seller(s, seller_id, scope)
            row = s.get(SellerWebhook, seller_id)
            if row is None:
                raise NotFound(f"seller {seller_id!r} has no webhook")
            return WebhookEndpoint(seller_id=seller_id, url=row.url, created_at=row.created_at, updated_at=row.updated_at)

    def delete(self, seller_id: str, *, scope: str | None = None) -> None:
        with self.db.session() as s:
            self._seller(s, seller_id, scope)
            row = s.get(SellerWebhook, seller_id)
            if row is None:
                raise NotFound(f"seller {seller_id!r} has no webhook")
            s.delete(row)

    def deliveries(self, seller_id: str, *, scope: str | None = None, status: DeliveryStatus | None = None,
                   limit: int = 100) -> list[WebhookDeliveryView]:
        """The seller's latest deliveries, newest first."""
        with self.db.read() as s:
            self._seller(s, seller_id, scope)
            q = select(WebhookDelivery).where(WebhookDelivery.seller_id == seller_id)
            if status is not None:
                q = q.where(WebhookDelivery.status == status)
            rows = s.scalars(q.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit))
            return [WebhookDeliveryView.model_validate(r, from_attributes=True) for r in rows]


# -- queueing --------------------------------------------------------------------------------


def on_notification(event: CloudEvent, session: Session) -> None:
    """Queue a seller's webhook notification (consumer ``workflows.webhooks``); a seller
    without an endpoint gets none."""
    note = event.payload()
    if not isinstance(note, OrderNotification) or note.channel != "webhook" or not note.recipient.startswith("seller:"):
        return
    seller_id = note.recipient.removeprefix("seller:")
    if session.get(SellerWebhook, seller_id) is None or session.get(WebhookDelivery, event.id) is not None:
        return
    session.add(WebhookDelivery(
        id=event.id, seller_id=seller_id, status="pending", attempts=0, next_attempt_at=utcnow(),
        payload={"id": event.id, "type": "order.notification", "created": event.time.isoformat(),
                 "data": {"order_id": note.order_id, "template": note.template, **note.data}},
    ))


# -- sending ---------------------------------------------------------------------------------


class WebhookSender(OutboundSender):
    """POSTs due deliveries (see the module docstring); `run_forever` is the worker's thread."""

    model = WebhookDelivery
    name = "webhook"

    def __init__(self, db: Database, settings: WorkflowSettings | None = None, *, batch: int = 50,
                 client: httpx.Client | None = None) -> None:
        self.settings = settings or WorkflowSettings.load()
        cfg = self.settings
        super().__init__(db, Schedule(cfg.webhook_max_attempts, cfg.webhook_retry_base_seconds,
                                      cfg.webhook_retry_max_seconds, cfg.webhook_poll_interval,
                                      lease_seconds=2 * cfg.webhook_timeout + 5,
                                      retention=timedelta(days=cfg.delivery_retention_days)), batch=batch)
        self._client = client or httpx.Client(timeout=cfg.webhook_timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def due(self, now: datetime) -> Sequence[Any]:
        with self.db.read() as s:
            return list(s.execute(
                select(WebhookDelivery.id, WebhookDelivery.payload, WebhookDelivery.attempts,
                       WebhookDelivery.next_attempt_at, SellerWebhook.url, SellerWebhook.secret)
                .join(SellerWebhook, SellerWebhook.seller_id == WebhookDelivery.seller_id, isouter=True)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at).limit(self.batch)))

    def send(self, row: Any) -> Attempt:
        url, secret = row.url, row.secret
        if url is None or secret is None:
            return Attempt(None, "the seller removed its webhook", final=True)
        host = urlsplit(url).hostname or ""
        if not self.settings.webhook_allow_private_hosts and _resolves_privately(host):
            return Attempt(None, f"{host} resolves to a private address")
        body = json.dumps(row.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", EVENT_HEADER: row.id,
                   SIGNATURE_HEADER: sign(secret, int(time.time()), body), "User-Agent": "marketpilot-webhooks/1"}
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Attempt(response.status_code, None)
        return Attempt(response.status_code, f"HTTP {response.status_code}")
