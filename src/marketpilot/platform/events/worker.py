"""The event worker process: whatever delivery the configured profile needs, until told to stop.

* embedded: the outbox dispatcher (``marketpilot serve`` may instead run the same
  :class:`Dispatcher` in a background thread of the API process);
* distributed: the outbox relay to Kafka plus one Kafka consumer group per subscriber, each
  in its own thread. Any number of such workers can run side by side: relays share the outbox
  through row locks, consumers share partitions through their groups.

Both also run the outbox retention purge (:mod:`marketpilot.platform.events.retention`) in a
thread of its own, at start and then every ``outbox_purge_interval_seconds``; workers side
by side delete the same rows at worst, which is harmless.

SIGTERM and SIGINT set the stop event; components finish the batch in hand, the consumers
leave their groups, the producer flushes, and :func:`run_worker` returns. If a component dies
unexpectedly the others are stopped too and :class:`WorkerError` is raised, so a supervisor
restarts the whole worker rather than leaving it half alive.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import Protocol

from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.platform.events.base import EventBus
from marketpilot.platform.events.dispatcher import Dispatcher
from marketpilot.platform.events.kafka_consumer import KafkaConsumerRunner
from marketpilot.platform.events.kafka_options import KafkaOptions
from marketpilot.platform.events.relay import Relay
from marketpilot.platform.events.retention import OutboxRetention
from marketpilot.platform.events.retry import RetryPolicy

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """A delivery component of the worker failed; the message names it."""


class HasDatabase(Protocol):
    """What the worker needs from a runtime: its settings and its database."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...


def run_worker(
    target: Settings | HasDatabase,
    stop_event: threading.Event | None = None,
    *,
    bus: EventBus | None = None,
    kafka: KafkaOptions | None = None,
    retry: RetryPolicy | None = None,
    poll_interval: float = 0.2,
    handle_signals: bool = True,
) -> None:
    """Deliver events for the subscribers of `bus` until `stop_event` is set or a signal arrives.

    `target` is a runtime (its database is reused) or bare settings (a database is opened and
    closed here; it must already be migrated). Without `bus`, the target's ``event_bus``
    attribute is used if it has one. `kafka` overrides the Kafka options derived from the
    settings (partitions, client tuning).
    """
    settings = target if isinstance(target, Settings) else target.settings
    db = Database.from_settings(settings) if isinstance(target, Settings) else target.db
    subscribers = bus if bus is not None else getattr(target, "event_bus", None)
    if not isinstance(subscribers, EventBus):
        subscribers = EventBus()
    if not len(subscribers):
        log.warning("event worker started with no subscribers; it will only %s",
                    "relay the outbox" if settings.is_distributed else "idle")
    stop = stop_event or threading.Event()
    signals = _stop_on_signals(stop) if handle_signals else nullcontext()
    retention = OutboxRetention(db, retention_days=settings.outbox_retention_days,
                                published_only=settings.is_distributed,
                                interval=settings.outbox_purge_interval_seconds,
                                ledger_retention_days=settings.processed_events_retention_days)
    purger = threading.Thread(target=retention.run_forever, args=(stop,), name="marketpilot-outbox-retention",
                              daemon=True)
    try:
        with signals:
            purger.start()
            if settings.is_distributed:
                options = kafka or KafkaOptions.from_settings(settings)
                _run_distributed(db, subscribers, options, retry, stop, poll_interval)
            else:
                log.info("event worker: embedded dispatcher for %d subscribers", len(subscribers))
                Dispatcher(db, subscribers, retry=retry).run_forever(stop, poll_interval)
    finally:
        stop.set()
        if purger.is_alive():
            purger.join()
        if isinstance(target, Settings):
            db.dispose()
    log.info("event worker stopped")


def _run_distributed(
    db: Database,
    bus: EventBus,
    options: KafkaOptions,
    retry: RetryPolicy | None,
    stop: threading.Event,
    poll_interval: float,
) -> None:
    relay = Relay(db, options)
    runners = [KafkaConsumerRunner(db, s, options, retry=retry) for s in bus]
    log.info("event worker: relay to %s and %d consumer groups", options.bootstrap, len(runners))
    failures: list[str] = []
    components: list[tuple[str, Callable[[], None]]] = [
        ("relay", lambda: relay.run_forever(stop, poll_interval)),
        *[(f"consumer {r.subscription.name}", _consume(r, stop, poll_interval)) for r in runners],
    ]
    threads = [
        threading.Thread(target=_guard(name, run, stop, failures), name=f"marketpilot-{name}", daemon=True)
        for name, run in components
    ]
    try:
        for thread in threads:
            thread.start()
        stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        relay.close()
        for runner in runners:
            runner.close()
    if failures:
        raise WorkerError(f"event worker stopped because {', '.join(failures)} failed")


def _consume(runner: KafkaConsumerRunner, stop: threading.Event, poll_interval: float) -> Callable[[], None]:
    return lambda: runner.run_forever(stop, max(poll_interval, 0.1))


def _guard(
    name: str, run: Callable[[], None], stop: threading.Event, failures: list[str]
) -> Callable[[], None]:
    def guarded() -> None:
        try:
            run()
        except BaseException:
            log.exception("event worker: %s died; stopping the worker", name)
            failures.append(name)
            stop.set()

    return guarded


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` (only the main thread may install signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("event worker: %s received, finishing the current batch", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
