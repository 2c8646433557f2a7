"""A circuit breaker per provider: stop hammering a provider that is failing, probe it later.

Closed: calls pass; `failure_threshold` transient failures in a row open the circuit.
Open: calls fail at once with :class:`BreakerOpen` (no request is sent) for `reset_seconds`.
Half-open: one probe call passes; success closes the circuit, failure opens it again.

Only transient failures (:class:`Unavailable`) count: a declined card says nothing about the
provider's health. The breaker is per process; each worker learns a provider's state for
itself, which is what a breaker is for (protect the provider and this process's threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from marketpilot.workflows.integrations.errors import BreakerOpen, Unavailable

T = TypeVar("T")
State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerStats:
    state: State
    consecutive_failures: int
    opened: int  # how many times the circuit opened since start
    rejected: int  # calls refused while open


class CircuitBreaker:
    def __init__(
        self,
        provider: str,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_seconds <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_seconds > 0")
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._opened = 0
        self._rejected = 0

    @property
    def stats(self) -> BreakerStats:
        with self._lock:
            return BreakerStats(self._current(), self._failures, self._opened, self._rejected)

    def _current(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_seconds:
            self._state = "half_open"
            self._probing = False
        return self._state

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run `fn` through the breaker; :class:`Unavailable` raised by it counts as a failure."""
        with self._lock:
            state = self._current()
            if state == "open" or (state == "half_open" and self._probing):
                self._rejected += 1
                raise BreakerOpen(self.provider, operation, "circuit open after repeated failures; not called")
            if state == "half_open":
                self._probing = True
        try:
            result = fn()
        except Unavailable:
            self._failure()
            raise
        except BaseException:
            self._release_probe()
            raise
        self._success()
        return result

    def _success(self) -> None:
        with self._lock:
            self._state, self._failures, self._probing = "closed", 0, False

    def _release_probe(self) -> None:
        with self._lock:
            self._probing = False

    def _failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == "half_open" or self._failures >= self.failure_threshold:
                if self._state != "open":
                    self._opened += 1
                self._state, self._opened_at, self._probing = "open", self._clock(), False
