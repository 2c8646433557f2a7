"""Prometheus metrics: HTTP traffic per route template, and event-delivery backlog.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (no process-global
state, so two apps in one process, as in tests, do not collide). Backlog and lag are not
counters kept in memory: :class:`OutboxCollector` reads the outbox tables at scrape time, so
every replica reports the same truth and a restart loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t

log = logging.getLogger(__name__)

# Latency buckets for an API whose budgets are single-digit milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
UNMATCHED_ROUTE = "<unmatched>"


class HttpMetrics:
    """Request count and latency, labelled by method, route template and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter(
            "marketpilot_http_requests", "HTTP requests served.", labels, registry=registry
        )
        self.latency = Histogram(
            "marketpilot_http_request_duration_seconds",
            "Time from request start to the last byte of the response.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # `.labels()` takes a lock and builds a key each call; remember the children instead.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            values = (method, route, str(status))
            children = (self.requests.labels(*values), self.latency.labels(*values))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def outbox_backlog(db: Database, *, relay: bool) -> tuple[int, dict[str, int]]:
    """(events not yet delivered, lag per embedded consumer), read from the tables.

    Relay (distributed): outbox rows not yet published to Kafka. Embedded: events past the
    slowest consumer's offset (all of them while no consumer has started).
    """
    with db.session() as s:
        head = int(s.scalar(select(func.max(t.OutboxEvent.position))) or 0)
        offsets = {c: int(p) for c, p in s.execute(select(t.ConsumerOffset.consumer, t.ConsumerOffset.position))}
        if relay:
            backlog = int(
                s.scalar(select(func.count()).select_from(t.OutboxEvent).where(t.OutboxEvent.published_at.is_(None)))
                or 0
            )
        else:
            backlog = head - min(offsets.values(), default=0)
    return max(backlog, 0), {c: max(head - p, 0) for c, p in offsets.items()}


class OutboxCollector(Collector):
    def __init__(self, db: Database, *, relay: bool) -> None:
        self.db = db
        self.relay = relay

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("marketpilot_outbox_up", "1 if the outbox tables could be read at this scrape.")
        try:
            backlog, lags = outbox_backlog(self.db, relay=self.relay)
        except Exception:
            log.warning("could not read the outbox for metrics", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        delivery = "relay" if self.relay else "embedded"
        gauge = GaugeMetricFamily(
            "marketpilot_outbox_backlog_events", "Events written but not yet delivered.", labels=["delivery"]
        )
        gauge.add_metric([delivery], backlog)
        yield gauge
        lag = GaugeMetricFamily(
            "marketpilot_consumer_lag_events", "Outbox events a consumer has not yet processed.", labels=["consumer"]
        )
        for consumer, value in sorted(lags.items()):
            lag.add_metric([consumer], value)
        yield lag


class Metrics:
    """The registry of one app: HTTP metrics plus the outbox collector."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, db: Database, *, relay: bool) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics(self.registry)
        self.registry.register(OutboxCollector(db, relay=relay))

    def render(self) -> bytes:
        return generate_latest(self.registry)
