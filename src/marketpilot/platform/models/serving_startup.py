"""What `marketpilot serve` starts for the models named in `served_models`.

The app's model server loads each named model's champion (and challenger) from the registry
on a background thread and follows promotions (:mod:`.serving_refresh`); every loaded
champion with a drift reference is monitored (:mod:`.serving_drift`) in windows of
`drift_window_seconds`, evaluated by the monitor's drain thread, which stores reports,
publishes ``DriftDetected`` and keeps ``runtime.drift`` current for fallbacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from marketpilot.platform.models.serving_drift import ServedDrift
from marketpilot.platform.models.serving_refresh import RegistryWatcher, watch_registry
from marketpilot.platform.monitoring.drift import DriftGauges, DriftMonitor
from marketpilot.platform.monitoring.drift_windows import WindowSpec

if TYPE_CHECKING:
    from fastapi import FastAPI

    from marketpilot.platform.config import Settings

log = logging.getLogger("marketpilot.serving")

DRAIN_INTERVAL_SECONDS = 10.0


@dataclass
class Serving:
    watcher: RegistryWatcher
    monitor: DriftMonitor
    drift: ServedDrift

    def stop(self) -> None:
        self.watcher.stop()
        self.monitor.stop(flush=True)  # closes the open windows and stores their reports


def start_serving(app: FastAPI, settings: Settings) -> Serving:
    """Serve `settings.served_models` on `app.state.model_server`, drift-monitored."""
    runtime = app.state.runtime
    monitor = DriftMonitor(
        runtime.db,
        source=settings.event_source,
        window=WindowSpec.every(timedelta(seconds=settings.drift_window_seconds)),
        gauges=DriftGauges(app.state.metrics.registry),
        service=runtime.drift,
        instance=settings.service_name,
    )
    drift = ServedDrift(app.state.model_server, monitor)
    watcher = watch_registry(
        app.state.model_server,
        settings,
        settings.served_models,
        interval=settings.model_refresh_seconds,
        on_load=drift.on_load,
    )
    monitor.start(interval=DRAIN_INTERVAL_SECONDS)
    log.info("serving models %s on /v2", ", ".join(settings.served_models))
    return Serving(watcher, monitor, drift)
