"""A circuit breaker per provider endpoint: stop hammering an endpoint that is failing, probe
it later.

Closed: calls pass; `failure_threshold` transient failures in a row open the circuit.
Open: calls fail at once with :class:`BreakerOpen` (no request is sent) for `reset_seconds`.
Half-open: one probe call passes; success closes the circuit, failure opens it again.

Each operation of a provider (``authorize``, ``label``, ...) has its own circuit: a carrier
whose label endpoint returns 5xx while its rate endpoint answers must still open the label
circuit, and successful rate calls must not keep resetting it. Only transient failures
(:class:`Unavailable`) count: a declined card says nothing about the provider's health. The breaker is per process; each worker learns a provider's state for
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


class _Circuit:
    __slots__ = ("failures", "opened", "opened_at", "probing", "rejected", "state")

    def __init__(self) -> None:
        self.state: State = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        self.opened = 0
        self.rejected = 0


_SEVERITY: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """The circuits of one provider, one per operation (see the module docstring)."""

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
        self._circuits: dict[str, _Circuit] = {}

    @property
    def stats(self) -> BreakerStats:
        """The provider as a whole: its worst circuit's state and failures; opens and
        rejections summed over its operations."""
        with self._lock:
            circuits = list(self._circuits.values())
            if not circuits:
                return BreakerStats("closed", 0, 0, 0)
            worst = max(circuits, key=lambda c: (_SEVERITY[self._current(c)], c.failures))
            return BreakerStats(self._current(worst), worst.failures,
                                sum(c.opened for c in circuits), sum(c.rejected for c in circuits))

    def stats_for(self, operation: str) -> BreakerStats:
        with self._lock:
            c = self._circuits.get(operation) or _Circuit()
            return BreakerStats(self._current(c), c.failures, c.opened, c.rejected)

    def _current(self, c: _Circuit) -> State:
        if c.state == "open" and self._clock() - c.opened_at >= self.reset_seconds:
            c.state, c.probing = "half_open", False
        return c.state

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run `fn` through `operation`'s circuit; :class:`Unavailable` raised by it counts as
        a failure of that operation."""
        with self._lock:
            c = self._circuits.setdefault(operation, _Circuit())
            state = self._current(c)
            if state == "open" or (state == "half_open" and c.probing):
                c.rejected += 1
                raise BreakerOpen(self.provider, operation, "circuit open after repeated failures; not called")
            if state == "half_open":
                c.probing = True
        try:
            result = fn()
        except Unavailable:
            self._failure(c)
            raise
        except BaseException:
            with self._lock:
                c.probing = False
            raise
        with self._lock:
            c.state, c.failures, c.probing = "closed", 0, False
        return result

    def _failure(self, c: _Circuit) -> None:
        with self._lock:
            c.failures += 1
            if c.state == "half_open" or c.failures >= self.failure_threshold:
                if c.state != "open":
                    c.opened += 1
                c.state, c.opened_at, c.probing = "open", self._clock(), False
