"""`RecommendationServed`: every slate we show, logged for off-line and off-policy evaluation.

A slate is logged as one outbox event (CloudEvents, delivered like every other event), with
what is needed to re-evaluate it later: the request id (clicks carry it back through
`InteractionLogged.request_id`), the items in order with their positions and scores, the
strategy and model versions that produced it, and the feature snapshot id (the outbox
position the availability state reflected and the event time of the user's feature row).

Writing one transaction per request would put a database commit on the request path (on
SQLite, a serialised write). :class:`SlateLog` instead queues slates in memory and a
background thread appends them in batches (``append_many``: one transaction per batch), so
the request pays a queue put. The price: a crash loses the slates of the last flush interval
(``flush_interval``, default 0.2 s); :meth:`SlateLog.flush` writes everything queued so far.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

from marketpilot.domain.events import EventData, register_event_type
from marketpilot.platform.db import Database
from marketpilot.platform.events import outbox

log = logging.getLogger(__name__)


class RecommendationServed(EventData, kw_only=True):
    TYPE = "marketpilot.recommendation.served"
    AGGREGATE = "request_id"
    request_id: str
    user_id: str | None = None
    session_id: str | None = None
    items: list[str]
    positions: list[int]
    scores: list[float]
    strategy: str
    model_versions: dict[str, str]
    feature_snapshot_id: str
    region: str | None = None
    device: str | None = None
    page: str | None = None
    seed_listing_id: str | None = None
    served_at: str
    # With a slate policy (slate_policy.py): the probability that the policy shows each item
    # at its position (1.0 where it is deterministic), whether the slot was explored, and the
    # session class whose exploration budget paid for it. Off-policy evaluation reads these.
    propensities: list[float] | None = None
    explored: list[bool] | None = None
    session_class: str | None = None


register_event_type(RecommendationServed)


class SlateLog:
    """Batched, asynchronous writer of `RecommendationServed` events through the outbox."""

    def __init__(self, db: Database, source: str, *, flush_interval: float = 0.2, batch_size: int = 500) -> None:
        self.db = db
        self.source = source
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._queue: queue.SimpleQueue[RecommendationServed] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = 0
        self.failed = 0

    def append(self, slate: RecommendationServed) -> None:
        self._queue.put(slate)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="recommend-slate-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # keep logging alive; the batch is counted as failed
                log.exception("could not write recommendation slates")

    def _drain(self) -> list[RecommendationServed]:
        batch: list[RecommendationServed] = []
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def flush(self) -> int:
        """Write every slate queued so far; returns how many were written."""
        total = 0
        with self._write_lock:
            while True:
                batch = self._drain()
                if not batch:
                    return total
                try:
                    self._write(batch)
                except Exception:
                    self.failed += len(batch)
                    raise
                total += len(batch)
                self.written += len(batch)

    def _write(self, batch: Sequence[RecommendationServed]) -> None:
        with self.db.session() as s:
            outbox.append_many(s, list(batch), self.source)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
