"""Guardrails from events: fold ``ExperimentSessionFinished`` events into the arms' statistics.

The handler writes through the delivery transaction's session, which also records the event
in the consumer's idempotency ledger, so a redelivered event is never counted twice. Events
for an unknown experiment or arm are dropped with a log line rather than retried forever:
they cannot succeed later.
"""

from __future__ import annotations

import logging

import numpy as np
from sqlalchemy.orm import Session

from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.measure.experiments.events import ExperimentSessionFinished
from marketpilot.measure.experiments.service import ExperimentService, Outcomes
from marketpilot.platform.events import EventBus
from marketpilot.platform.events.cloudevent import CloudEvent

__all__ = ["OutcomeFolder"]

log = logging.getLogger(__name__)


class OutcomeFolder:
    TYPES = (ExperimentSessionFinished.TYPE,)

    def __init__(self, service: ExperimentService) -> None:
        self.service = service

    def subscribe(self, bus: EventBus, name: str = "measure.experiment-outcomes") -> None:
        bus.subscribe(name, self.TYPES, self)

    def __call__(self, event: CloudEvent, session: Session) -> None:
        payload = event.payload()
        if not isinstance(payload, ExperimentSessionFinished):
            return
        outcomes = Outcomes(gmv=np.array([payload.gmv]), clicked=np.array([payload.clicked]),
                            latency_ms=np.asarray(payload.request_latency_ms, dtype=np.float64),
                            error=np.asarray(payload.request_error, dtype=bool))
        try:
            self.service.record_in(session, payload.experiment_id, payload.arm, outcomes)
        except (NotFound, InvalidInput) as exc:
            log.warning("dropped experiment outcome %s: %s", event.id, exc.message)
