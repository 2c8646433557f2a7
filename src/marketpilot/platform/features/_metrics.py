"""Prometheus metrics of the feature store, one set per collector registry.

prometheus-client refuses to register a metric name twice in one registry, yet a process may
build several stores (tests, the benchmark); so each registry's counter is created once here
and shared by every store that reports to it.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter

STALE_READS = "marketpilot_feature_stale_reads_total"

_lock = threading.Lock()
_stale: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def stale_reads_counter(registry: CollectorRegistry | None = None) -> Counter:
    """``marketpilot_feature_stale_reads_total{view}``: entity rows served older than the view's SLA."""
    registry = registry or REGISTRY
    with _lock:
        counter = _stale.get(registry)
        if counter is None:
            counter = Counter(
                STALE_READS,
                "Feature rows served older than their view's staleness SLA, by view.",
                ["view"],
                registry=registry,
            )
            _stale[registry] = counter
        return counter
