"""Geo holdout: design, difference-in-differences, and interval coverage on seeded runs."""

from __future__ import annotations

import numpy as np
import pytest

from marketpilot.measure.holdout import did_estimate, matched_pair_assignment
from marketpilot.measure.holdout.simulation import run_holdout
from marketpilot.measure.simulated_sessions import SimulatedSessions


def sessions(seed: int = 0, days: int = 20) -> SimulatedSessions:
    """Ten regions of very different size, a weekday pattern shared by all, 7% conversion."""
    rng = np.random.default_rng(seed)
    size = np.array([220, 170, 140, 120, 90, 80, 50, 50, 50, 30])
    weekday = 1 + 0.2 * np.sin(np.arange(days) * 2 * np.pi / 7)
    counts = rng.poisson(size[:, None] * weekday[None, :])
    region = np.repeat(np.repeat(np.arange(10), days), counts.ravel())
    day = np.repeat(np.tile(np.arange(days), 10), counts.ravel())
    n = region.size
    gmv = np.where(rng.random(n) < 0.07, rng.lognormal(3.5, 0.9, n), 0.0)
    return SimulatedSessions(gmv=gmv, clicked=rng.random(n) < 0.3, region=region, day=day,
                             regions=tuple(f"R{i}" for i in range(10)))


def test_did_recovers_a_known_uplift_despite_a_common_shock_and_size_differences() -> None:
    days = 30
    size = np.array([100.0, 80, 60, 40, 30, 20, 15, 10])
    shock = np.where(np.arange(days) >= 15, 1.3, 1.0)  # everyone sells 30% more after day 15
    treated = np.array([True, False, True, False, True, False, True, False])
    panel = size[:, None] * shock[None, :] * np.where(treated[:, None] & (np.arange(days) >= 15), 1.1, 1.0)
    est = did_estimate(panel, treated, 15)
    assert est.relative_uplift == pytest.approx(0.1)
    assert est.incremental_gmv == pytest.approx(panel[treated, 15:].sum() * 0.1 / 1.1)


def test_the_95_percent_interval_covers_the_true_uplift_in_at_least_90_percent_of_runs() -> None:
    pool = sessions()
    runs = [run_holdout(pool, uplift=0.1, post_start=10, seed=s) for s in range(200)]
    coverage = np.mean([r.covers for r in runs])
    assert coverage >= 0.9
    assert np.mean([r.did.relative_uplift for r in runs]) == pytest.approx(0.1, abs=0.05)


def test_matched_pairs_put_one_of_each_pair_in_treatment() -> None:
    pre = np.array([10.0, 11, 50, 52, 100, 101, 700])
    for seed in range(20):
        t = matched_pair_assignment(pre, seed=seed)
        assert t[0] != t[1] and t[2] != t[3] and t[4] != t[5]
    assert len({tuple(matched_pair_assignment(pre, seed=s)) for s in range(20)}) > 1


@pytest.mark.parametrize(("args", "message"), [
    ((np.ones((4, 10)), np.array([True, True, False, False]), 0), r"post_start must lie in \(0, 10\)"),
    ((np.ones((4, 10)), np.array([True, False, False, False]), 5), "at least 2 treated and 2 control"),
    ((np.ones((4, 10)), np.array([True, False]), 5), "one flag per region"),
    ((np.zeros((4, 10)), np.array([True, True, False, False]), 5), "positive GMV before and after"),
])
def test_bad_panels_are_refused(args: tuple[np.ndarray, np.ndarray, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        did_estimate(*args)


def test_design_refuses_too_few_or_empty_regions() -> None:
    with pytest.raises(ValueError, match="at least 4 regions"):
        matched_pair_assignment(np.ones(3), seed=0)
    with pytest.raises(ValueError, match="positive pre-period GMV"):
        matched_pair_assignment(np.array([1.0, 0.0, 2.0, 3.0]), seed=0)
