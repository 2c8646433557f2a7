"""Keeping a model server in step with the registry: load at start-up, follow promotions.

Promotions happen elsewhere (`marketpilot models promote` in another process, a retraining
job), and in the distributed profile every replica must notice. Rather than a push channel,
each server polls: :class:`RegistryWatcher` re-resolves the served aliases every
`interval` seconds and reloads only versions it does not hold (a poll that finds nothing new
costs a few registry reads; versions are immutable, so nothing is re-read from disk). A
promotion therefore reaches every replica within one interval.

Loading runs on the watcher's thread, not in the request path or the app's start-up: an
app is live at once, and `/v2/health/ready` turns 200 when the expected models are loaded
(importing MLflow alone takes seconds).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from marketpilot.platform.models.serving import Adapter, ModelServer

if TYPE_CHECKING:
    from marketpilot.platform.config import Settings
    from marketpilot.platform.models.registry import ModelRegistry

log = logging.getLogger("marketpilot.serving.refresh")


class RegistryWatcher:
    """Loads `names` into `server` from the registry, then polls for alias changes.

    `open_registry` is called on the watcher's thread (MLflow is imported there, not by the
    caller); the registry it returns is closed by :meth:`stop`.
    """

    def __init__(
        self,
        server: ModelServer,
        open_registry: Callable[[], ModelRegistry],
        names: Sequence[str],
        *,
        interval: float = 30.0,
        adapters: dict[str, Adapter] | None = None,
        on_load: Callable[[ModelRegistry, str], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"refresh interval must be positive, got {interval}")
        self.server = server
        self.names = tuple(names)
        self.interval = interval
        self._open = open_registry
        self._adapters = dict(adapters or {})
        self._on_load = on_load
        self._registry: ModelRegistry | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0  # completed polls (load included), for tests and health pages
        server.expect(self.names)

    def poll_once(self) -> list[str]:
        """Load what is missing and follow moved aliases; returns the names that changed.
        A model that fails to load is logged and retried at the next poll."""
        if self._registry is None:
            self._registry = self._open()
        changed = []
        for name in self.names:
            first = name not in self.server.names()
            if first and self._on_load is not None:
                self.server.hold(name)  # ready once the hook has also run for the first load
            try:
                try:
                    if not first:
                        changed.extend(self.server.refresh(self._registry, [name]))
                    else:
                        self.server.load(self._registry, name, adapter=self._adapters.get(name))
                        changed.append(name)
                except Exception:
                    log.exception("could not load model %s from the registry; retrying in %.0f s", name, self.interval)
                    continue
                if self._on_load is not None and name in changed:
                    try:
                        self._on_load(self._registry, name)
                    except Exception:  # a failed hook does not keep the model unserved
                        log.exception("after loading model %s: hook failed", name)
            finally:
                if first and self._on_load is not None:
                    self.server.settle(name)
        self.polls += 1
        return changed

    def start(self) -> RegistryWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="marketpilot-model-refresh", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # opening the registry failed: try again next interval
                log.exception("model registry unavailable; retrying in %.0f s", self.interval)
            self._stop.wait(self.interval)


def watch_registry(
    server: ModelServer,
    settings: Settings,
    names: Sequence[str],
    *,
    interval: float = 30.0,
    on_load: Callable[[ModelRegistry, str], None] | None = None,
) -> RegistryWatcher:
    """Start serving `names` from the registry of `settings`, following promotions."""

    def open_registry() -> ModelRegistry:
        from marketpilot.platform.models.registry import ModelRegistry

        return ModelRegistry.from_settings(settings)

    return RegistryWatcher(server, open_registry, names, interval=interval, on_load=on_load).start()
