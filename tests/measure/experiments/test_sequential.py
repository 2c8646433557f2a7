"""The confidence sequence stays valid under continuous monitoring and detects real effects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketpilot.measure.experiments.sequential import difference_confidence_sequence, half_width


def crossing_rate(effect: float, runs: int, looks: int, batch: int, alpha: float) -> float:
    rng = np.random.default_rng(42)
    crossed = 0
    for _ in range(runs):
        t = rng.normal(effect, 1.0, (looks, batch)).cumsum(axis=0).sum(axis=1)
        c = rng.normal(0.0, 1.0, (looks, batch)).cumsum(axis=0).sum(axis=1)
        for k in range(looks):
            n = (k + 1) * batch
            b = difference_confidence_sequence(t[k] / n, 1.0, n, c[k] / n, 1.0, n, tau=0.1, alpha=alpha)
            assert b is not None
            if b.low > 0 or b.high < 0:
                crossed += 1
                break
    return crossed / runs


def test_checking_after_every_batch_keeps_the_false_alarm_rate_below_alpha() -> None:
    assert crossing_rate(0.0, runs=300, looks=100, batch=50, alpha=0.05) <= 0.05


def test_a_real_effect_is_found() -> None:
    assert crossing_rate(0.15, runs=50, looks=100, batch=50, alpha=0.05) >= 0.95


def test_the_sequence_is_wider_than_a_fixed_sample_interval_and_shrinks() -> None:
    widths = [half_width(1.0 / n, tau=0.1, alpha=0.05) for n in (100, 1_000, 10_000, 100_000)]
    assert all(a > b for a, b in zip(widths, widths[1:], strict=False))
    assert widths[-1] > 1.96 * math.sqrt(1.0 / 100_000)


def test_too_few_observations_give_no_bound_and_bad_parameters_are_refused() -> None:
    assert difference_confidence_sequence(1.0, 1.0, 1, 0.0, 1.0, 50, tau=0.1, alpha=0.05) is None
    with pytest.raises(ValueError, match="alpha must lie in"):
        half_width(0.1, tau=0.1, alpha=1.5)
    with pytest.raises(ValueError, match="tau must be positive"):
        half_width(0.1, tau=0.0, alpha=0.05)
