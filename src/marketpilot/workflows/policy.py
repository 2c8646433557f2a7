"""How the workflows wait: backoff between attempts of an external call, how long a run
keeps waiting for a provider that is down, and how long stock reservations live.
(Per-operation HTTP timeouts are set where the providers are built, in `engine`.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: attempt n (from 0) waits ``base * factor**n`` capped at
    `max_delay`. A run gives up on a provider (and compensates) once it has waited
    `max_wait` seconds in total on one call: long enough to ride out an outage (the
    breaker keeps it from hammering the provider meanwhile), short enough that stock and
    authorisations are not held forever."""

    base_delay: float = 0.05
    factor: float = 2.0
    max_delay: float = 2.0
    max_wait: float = 300.0

    def delay(self, attempt: int) -> float:
        return min(self.base_delay * self.factor ** min(attempt, 60), self.max_delay)


RESERVATION_TTL_SECONDS = 86_400
"""Checkout locks taken by the order workflow outlive any run (the longest wait of a run is
bounded by RetryPolicy.max_wait per call), so a missing lock at commit time can only mean an
earlier attempt of the same step committed it."""
