"""What the workflow steps of this process work with: database, providers, fraud check,
screening lists and policies. Bound before DBOS launches (launching resumes interrupted
runs at once, and their steps need it); one per process, like DBOS itself."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from marketpilot.marketplace.inventory import InventoryService
from marketpilot.platform.db import Database
from marketpilot.workflows.base import FraudCheck
from marketpilot.workflows.integrations.carrier import Carrier
from marketpilot.workflows.integrations.payments import PaymentProvider
from marketpilot.workflows.policy import RetryPolicy


@dataclass
class WorkflowEnvironment:
    db: Database
    source: str
    inventory: InventoryService
    payments: PaymentProvider
    carrier: Carrier
    fraud: FraudCheck
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    review_timeout: float = 86_400.0
    dispute_sla: float = 172_800.0


_bound: WorkflowEnvironment | None = None
_lock = threading.Lock()


def bind(environment: WorkflowEnvironment) -> None:
    global _bound
    with _lock:
        _bound = environment


def unbind() -> None:
    global _bound
    with _lock:
        _bound = None


def current() -> WorkflowEnvironment:
    environment = _bound
    if environment is None:
        raise RuntimeError("the workflows are not bound: call marketpilot.workflows.engine.install(runtime) "
                           "before launching DBOS")
    return environment
