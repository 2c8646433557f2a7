"""How often and how patiently a failing handler is retried before its event is dead-lettered.

A failed event blocks the events after it for the same consumer (the embedded consumer, or
the Kafka partition), because skipping ahead would break per-aggregate order. Backoff keeps a
broken handler from spinning; the attempt limit keeps one poison event from stalling a
consumer forever. Attempt counts live in memory: a restart grants a poison event a fresh set
of attempts, which errs on the side of not giving up on events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` handler calls per event, waiting `initial_backoff * multiplier**k`
    seconds (capped at `max_backoff`) between them."""

    max_attempts: int = 5
    initial_backoff: float = 0.2
    multiplier: float = 2.0
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff seconds must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1-based)."""
        return float(min(self.max_backoff, self.initial_backoff * self.multiplier ** max(attempts - 1, 0)))


@dataclass
class _Failure:
    event_id: str
    attempts: int
    retry_at: float


@dataclass
class Backoff:
    """Failure bookkeeping for a set of delivery lanes (consumers or Kafka partitions).

    A lane whose head event failed is blocked until its retry time; a success clears it.
    """

    policy: RetryPolicy
    clock: Callable[[], float] = time.monotonic
    _failures: dict[object, _Failure] = field(default_factory=dict)

    def blocked(self, lane: object) -> bool:
        failure = self._failures.get(lane)
        return failure is not None and failure.retry_at > self.clock()

    def record_failure(self, lane: object, event_id: str) -> int:
        """Count a failed attempt at `event_id` on `lane`; returns the attempts so far."""
        failure = self._failures.get(lane)
        attempts = failure.attempts + 1 if failure is not None and failure.event_id == event_id else 1
        self._failures[lane] = _Failure(event_id, attempts, self.clock() + self.policy.delay(attempts))
        return attempts

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.policy.max_attempts

    def clear(self, lane: object) -> None:
        self._failures.pop(lane, None)

    def next_retry_in(self) -> float | None:
        """Seconds until the earliest blocked lane may retry (None if nothing is blocked)."""
        if not self._failures:
            return None
        return max(0.0, min(f.retry_at for f in self._failures.values()) - self.clock())
