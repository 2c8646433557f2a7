"""The workflows capability installed in a process: providers built from settings, steps
bound, the ``OrderPlaced`` trigger subscribed, and its part in the process's DBOS instance.

    installation = install(runtime)          # before DBOS launches (it resumes runs at once)
    durable.launch(runtime.settings)         # or retraining_engine.launch(...), which joins it
    ...
    installation.close()

Orders are started by the ``workflows.orders`` subscriber: it enqueues run ``order:<id>`` on
the orders queue. Enqueueing an id that exists returns that run, so a redelivered
``OrderPlaced`` never starts a second run for one order.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from dbos import DBOS, SetWorkflowID, WorkflowHandle
from sqlalchemy.orm import Session

from marketpilot.domain.events import OrderPlaced
from marketpilot.marketplace.inventory import InventoryService
from marketpilot.platform import durable
from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.platform.events import EventBus
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.workflows import dispute, mail, onboarding, order  # noqa: F401 - registers every workflow
from marketpilot.workflows import environment as workflow_environment
from marketpilot.workflows.base import FraudCheck
from marketpilot.workflows.events import OrderNotification
from marketpilot.workflows.fraud_rules import RuleFraudCheck
from marketpilot.workflows.integrations.breaker import CircuitBreaker
from marketpilot.workflows.integrations.carrier import Carrier, HttpCarrier
from marketpilot.workflows.integrations.payments import HttpPaymentProvider, PaymentProvider
from marketpilot.workflows.integrations.transport import ProviderTransport
from marketpilot.workflows.outbound import OutboundSender
from marketpilot.workflows.settings import WorkflowSettings
from marketpilot.workflows.webhooks import WEBHOOK_CONSUMER, WebhookSender, on_notification

__all__ = ["ORDER_CONSUMER", "ORDER_QUEUE", "PARTICIPANT", "Installation", "install", "start_order"]

log = logging.getLogger(__name__)

PARTICIPANT = "workflows"
ORDER_QUEUE = "marketpilot-orders"
WORKFLOW_QUEUE = "marketpilot-workflows"  # onboarding and disputes: API-started, few
ORDER_CONSUMER = "workflows.orders"


class HasRuntime(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def source(self) -> str: ...


@dataclass
class Installation:
    settings: WorkflowSettings
    environment: workflow_environment.WorkflowEnvironment
    transports: list[ProviderTransport] = field(default_factory=list)
    webhooks: WebhookSender | None = None
    emails: mail.EmailSender | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start_webhooks(self, db: Database) -> WebhookSender:
        """Send sellers' webhook deliveries from a thread of this process until `close`."""
        self.webhooks = WebhookSender(db, self.settings)
        self._start(self.webhooks, "marketpilot-webhooks")
        return self.webhooks

    def start_emails(self, db: Database) -> mail.EmailSender:
        """Send buyers' order e-mails from a thread of this process until `close`."""
        self.emails = mail.EmailSender(db, self.settings)
        self._start(self.emails, "marketpilot-email")
        return self.emails

    def _start(self, sender: OutboundSender, name: str) -> None:
        thread = threading.Thread(target=sender.run_forever, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        for sender in (self.webhooks, self.emails):
            if sender is not None:
                sender.close()
        for transport in self.transports:
            transport.close()


def payment_provider(settings: WorkflowSettings) -> tuple[PaymentProvider, ProviderTransport]:
    transport = ProviderTransport(
        "payments", settings.payment_url, api_key=settings.payment_api_key,
        timeouts={"authorize": 2.0, "capture": 2.0, "void": 2.0, "refund": 2.0},
        breaker=CircuitBreaker("payments", failure_threshold=settings.breaker_failures,
                               reset_seconds=settings.breaker_reset_seconds),
    )
    return HttpPaymentProvider(transport), transport


def carrier(settings: WorkflowSettings) -> tuple[Carrier, ProviderTransport]:
    transport = ProviderTransport(
        "carrier", settings.carrier_url, api_key=settings.carrier_api_key,
        timeouts={"rates": 2.0, "label": 3.0, "cancel_label": 3.0, "track": 2.0},
        breaker=CircuitBreaker("carrier", failure_threshold=settings.breaker_failures,
                               reset_seconds=settings.breaker_reset_seconds),
    )
    return HttpCarrier(transport, rates_ttl=settings.carrier_rates_ttl), transport


def install(
    runtime: HasRuntime,
    settings: WorkflowSettings | None = None,
    *,
    fraud: FraudCheck | None = None,
    bus: EventBus | None = None,
    subscribe: bool = True,
) -> Installation:
    """Join the process's DBOS instance with the workflows (see the module docstring).
    `fraud` defaults to :class:`RuleFraudCheck` until the fraud service is plugged in."""
    config = settings or WorkflowSettings.load()
    mail.check_settings(config)
    payments, payment_transport = payment_provider(config)
    shipping, carrier_transport = carrier(config)
    environment = workflow_environment.WorkflowEnvironment(
        db=runtime.db, source=runtime.source, inventory=InventoryService(runtime.db, runtime.source),
        payments=payments, carrier=shipping, fraud=fraud or RuleFraudCheck(), retry=config.retry,
        review_timeout=config.review_timeout_seconds, dispute_sla=config.dispute_sla_seconds,
    )
    installation = Installation(config, environment, [payment_transport, carrier_transport])
    durable.join(
        durable.Participant(
            name=PARTICIPANT,
            bind=lambda: workflow_environment.bind(environment),
            unbind=workflow_environment.unbind,
            queues=(
                durable.QueueSpec(ORDER_QUEUE, worker_concurrency=config.order_concurrency,
                                  polling_interval=config.queue_polling_interval),
                durable.QueueSpec(WORKFLOW_QUEUE, worker_concurrency=8,
                                  polling_interval=config.workflow_queue_polling_interval),
            ),
        )
    )
    target = bus if bus is not None else getattr(runtime, "event_bus", None)
    if subscribe and isinstance(target, EventBus):
        target.subscribe(ORDER_CONSUMER, [OrderPlaced.TYPE], on_order_placed)
        target.subscribe(WEBHOOK_CONSUMER, [OrderNotification.TYPE], on_notification)
        installation.start_webhooks(runtime.db)
        if config.email_smtp_url is not None:
            target.subscribe(mail.EMAIL_CONSUMER, [OrderNotification.TYPE], mail.on_notification)
            installation.start_emails(runtime.db)
    return installation


def on_order_placed(event: CloudEvent, _session: Session) -> None:
    payload = event.payload()
    if isinstance(payload, OrderPlaced):
        start_order(payload.order_id)


def start_order(order_id: str) -> WorkflowHandle[dict[str, Any]]:
    """Enqueue the order's run (idempotent per order id); DBOS must be launched here."""
    queue = DBOS.retrieve_queue(ORDER_QUEUE)
    if queue is None:
        raise RuntimeError(f"the {ORDER_QUEUE!r} queue is not registered: install() the workflows before launching DBOS")
    with SetWorkflowID(order.order_workflow_id(order_id)):
        return queue.enqueue(order.order_workflow, order_id)
