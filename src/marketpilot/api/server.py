"""Run the API under uvicorn with JSON logs (what `marketpilot serve` calls).

Uvicorn's own access log is off: the request-context middleware writes one JSON access line
per request, with the route template, status, duration and request id.

Before serving, the start-up heap is frozen (`gc.freeze`): the modules, app and runtime are
~150,000 long-lived objects, and without freezing, every full collection, which request
garbage triggers from time to time, walks all of them, a pause of tens to hundreds of
milliseconds that lands in some unlucky request's latency.

The young-generation threshold is raised from 700 to 100,000 container allocations: a
recommendation request allocates a few thousand short-lived objects (numpy arrays, lists),
almost all freed by reference counting, so the default ran several young collections per
request that found next to nothing. Measured on one server core at 100,000 listings with
the HTTP load of `benchmarks/bench_recommend_trained.py` driven from a scratch script (a
catalogue fitted on its first 25,000 listings, 3 runs of 5 s each way): about 473 -> 494
requests/s, within the run-to-run spread of one harness run. Cyclic garbage waits longer for
collection, at most about 100,000 objects.
"""

from __future__ import annotations

import gc

import uvicorn
from fastapi import FastAPI

from marketpilot.api.app import create_app
from marketpilot.platform.config import Settings, get_settings
from marketpilot.platform.monitoring import configure_logging
from marketpilot.runtime import Runtime

GC_THRESHOLDS = (100_000, 50, 100)  # CPython's defaults: (700, 10, 10)


def run(app: FastAPI, *, host: str, port: int, log_level: str = "info") -> None:
    configure_logging(log_level)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, log_level=log_level, lifespan="on")


def serve(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    run(create_app(Runtime(settings)), host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    serve()
