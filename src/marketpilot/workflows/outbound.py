"""Sending queued deliveries (sellers' webhooks, buyers' e-mails) outside any transaction.

A consumer of the outbox queues one row per message in the event's own delivery
transaction, keyed by the event id, so a message is queued exactly once. An
`OutboundSender` (a thread of ``marketpilot worker``) then sends due rows:

* **claim**: each attempt is claimed by moving the row's ``next_attempt_at`` past the
  attempt's longest duration (a lease), if no other sender has moved it since it was read;
  several workers share the rows and one attempt is made once. A sender that dies after
  claiming leaves the row due again when the lease has passed.
* **send**: the subclass talks to the outside world (HTTP, SMTP) with no transaction open: on
  SQLite that would hold the single writer for as long as the other side takes to answer.
* **settle**: delivered, or due again after ``base * 2**(attempts-1)`` seconds (capped), or
  failed after ``max_attempts`` or on an error no retry can mend.
* **purge**: delivered and failed rows are deleted once they are older than the retention
  (``MARKETPILOT_WORKFLOWS_DELIVERY_RETENTION_DAYS``, 30; they can hold personal data, such
  as a buyer's address), at the sender's start and then hourly.

Delivery is at least once: a sender killed between the send and the settle sends again.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, delete, select, update

from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import utcnow

log = logging.getLogger(__name__)


class Attempt(NamedTuple):
    """How one send went: the other side's status code (None: no answer), the error (None:
    delivered), and whether no later attempt can do better."""

    status_code: int | None
    error: str | None
    final: bool = False


@dataclass(frozen=True)
class Schedule:
    """When a failed delivery is tried again, and how often at most."""

    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    poll_interval: float
    lease_seconds: float  # longer than one attempt can take
    retention: timedelta = timedelta(days=30)  # finished rows older than this are deleted
    purge_interval_seconds: float = 3600.0

    def delay(self, attempts: int) -> float:
        return min(self.retry_base_seconds * 2 ** (attempts - 1), self.retry_max_seconds)


class OutboundSender(ABC):
    """Sends the due rows of one deliveries table (see the module docstring).

    The table's ORM class has ``id``, ``status`` (pending | delivered | failed), ``attempts``,
    ``next_attempt_at``, ``last_status_code``, ``last_error`` and ``delivered_at``.
    """

    model: Any  # the ORM class of the deliveries table
    name: str  # for logs: "webhook", "e-mail"

    def __init__(self, db: Database, schedule: Schedule, *, batch: int = 50) -> None:
        self.db = db
        self.schedule = schedule
        self.batch = batch
        self._table = cast(Table, self.model.__table__)

    @abstractmethod
    def due(self, now: datetime) -> Sequence[Any]:
        """Up to `batch` pending rows due at `now`, oldest first, each with ``id``,
        ``attempts``, ``next_attempt_at`` and whatever `send` needs."""

    @abstractmethod
    def send(self, row: Any) -> Attempt:
        """One attempt at delivering `row`; never raises for the other side's failures."""

    @abstractmethod
    def close(self) -> None:
        """Release the sender's connections."""

    def run_once(self, now: datetime | None = None) -> int:
        """Send what is due; the number of deliveries attempted."""
        moment = now or utcnow()
        sent = 0
        for row in self.due(moment):
            if not self._claim(row.id, row.next_attempt_at, moment):
                continue  # another worker's sender took it
            self._settle(row.id, row.attempts + 1, self.send(row))
            sent += 1
        return sent

    def _claim(self, delivery_id: str, seen: datetime, now: datetime) -> bool:
        lease = now + timedelta(seconds=self.schedule.lease_seconds)
        table = self._table
        with self.db.write() as c:
            moved = c.execute(update(table).where(
                table.c.id == delivery_id, table.c.status == "pending",
                table.c.next_attempt_at == seen).values(next_attempt_at=lease))
        return moved.rowcount == 1

    def _settle(self, delivery_id: str, attempts: int, attempt: Attempt) -> None:
        now = utcnow()
        with self.db.session() as s:
            row = s.get(self.model, delivery_id)
            if row is None:
                return
            row.attempts, row.last_status_code, row.last_error = attempts, attempt.status_code, attempt.error
            if attempt.error is None:
                row.status, row.delivered_at = "delivered", now
            elif attempt.final or attempts >= self.schedule.max_attempts:
                row.status = "failed"
                log.warning("%s %s given up after %d attempts: %s", self.name, delivery_id, attempts, attempt.error)
            else:
                row.next_attempt_at = now + timedelta(seconds=self.schedule.delay(attempts))

    def purge(self, *, now: datetime | None = None, batch: int = 5_000) -> int:
        """Delete delivered and failed rows created before the retention, oldest first, `batch`
        per transaction (pending rows stay, however old); how many went."""
        table = self._table
        cutoff = (now or utcnow()) - self.schedule.retention
        finished = table.c.status.in_(("delivered", "failed")) & (table.c.created_at < cutoff)
        oldest = select(table.c.id).where(finished).order_by(table.c.created_at).limit(batch)
        statement = delete(table).where(table.c.id.in_(oldest.scalar_subquery()))
        deleted = 0
        while True:
            with self.db.write() as c:
                gone = int(c.execute(statement).rowcount)
            deleted += gone
            if gone < batch:
                break
        if deleted:
            log.info("%s retention: %d finished deliveries older than %s deleted", self.name, deleted, cutoff)
        return deleted

    def run_forever(self, stop: threading.Event) -> None:
        next_purge = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_purge:
                try:
                    self.purge()
                except Exception:  # retried at the next interval; nothing is lost by waiting
                    log.exception("%s sender: purge failed", self.name)
                next_purge = time.monotonic() + self.schedule.purge_interval_seconds
            try:
                sent = self.run_once()
            except Exception:  # a failed pass is retried at the next poll; the rows stay due
                log.exception("%s sender: pass failed", self.name)
                sent = 0
            if sent < self.batch:
                stop.wait(self.schedule.poll_interval)
