from __future__ import annotations

import pytest

from marketpilot.platform.events import RetryPolicy
from marketpilot.platform.events.retry import Backoff


def test_backoff_grows_geometrically_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff=0.5, multiplier=2, max_backoff=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_lane_is_blocked_until_its_retry_is_due() -> None:
    now = [100.0]
    backoff = Backoff(RetryPolicy(initial_backoff=1, max_attempts=2), clock=lambda: now[0])
    assert backoff.record_failure("lane", "e1") == 1
    assert backoff.blocked("lane") and not backoff.blocked("other")
    assert backoff.next_retry_in() == 1
    now[0] += 1
    assert not backoff.blocked("lane")
    attempts = backoff.record_failure("lane", "e1")
    assert attempts == 2 and backoff.exhausted(attempts)


def test_a_different_event_starts_a_fresh_count() -> None:
    backoff = Backoff(RetryPolicy())
    backoff.record_failure("lane", "e1")
    backoff.record_failure("lane", "e1")
    assert backoff.record_failure("lane", "e2") == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1, got 0"),
        ({"initial_backoff": -1}, "backoff seconds must not be negative"),
        ({"multiplier": 0.5}, "multiplier must be at least 1, got 0.5"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
