"""Operational signals: Prometheus metrics and structured (JSON) logs."""

from marketpilot.platform.monitoring.logging import configure_logging, request_id
from marketpilot.platform.monitoring.metrics import HttpMetrics, Metrics, OutboxCollector, outbox_backlog

__all__ = ["HttpMetrics", "Metrics", "OutboxCollector", "configure_logging", "outbox_backlog", "request_id"]
