"""`run_worker` in this process. The crash tests run it as a real process for both profiles
and stop it with SIGTERM."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from events_harness import UPDATED, effects_of, recorder, wait_for, write_updates

from marketpilot.platform.config import Settings, load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.events import EventBus, run_worker


@dataclass
class AppRuntime:
    """What the worker reads from the application's runtime."""

    settings: Settings
    db: Database
    event_bus: EventBus = field(default_factory=EventBus)


def run_in_thread(target: Settings | AppRuntime, stop: threading.Event, **kwargs: object) -> threading.Thread:
    thread = threading.Thread(target=run_worker, args=(target, stop), kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def test_the_embedded_worker_serves_the_runtime_bus_until_stopped(sqlite_events_db: Database, tmp_path: Path) -> None:
    settings = load_settings(profile="embedded", home=tmp_path, database_url=sqlite_events_db.url)
    runtime = AppRuntime(settings, sqlite_events_db)
    runtime.event_bus.subscribe("audit", [UPDATED], recorder("audit"))
    events = write_updates(sqlite_events_db, ["a", "b"], per_subject=3)
    stop = threading.Event()

    thread = run_in_thread(runtime, stop, poll_interval=0.01)
    wait_for(lambda: len(effects_of(sqlite_events_db, "audit")) == len(events), lambda: stop.wait(0.05),
             what="the embedded worker")
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()

