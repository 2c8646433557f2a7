"""The drift injector: seeded, with the change exactly where and what the scenario says."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from marketpilot.simulate.drift import DriftInjector, DriftScenario


def test_the_same_seed_gives_the_same_streams_and_another_seed_does_not() -> None:
    scenario = DriftScenario("mean_shift", change_at=50, columns=("x0",))
    a = DriftInjector(seed=1).stream(100, scenario, part=2)
    b = DriftInjector(seed=1).stream(100, scenario, part=2)
    c = DriftInjector(seed=2).stream(100, scenario, part=2)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    assert not np.array_equal(a.features, c.features)


def test_a_scenario_changes_nothing_before_its_change_point() -> None:
    injector = DriftInjector(seed=3)
    control = injector.stream(1_000, part=1)
    shifted = injector.stream(1_000, DriftScenario("mean_shift", change_at=600, columns=("x1",), magnitude=2.0), part=1)
    np.testing.assert_array_equal(control.features[:600], shifted.features[:600])
    delta = shifted.features[600:, 1] - control.features[600:, 1]
    np.testing.assert_allclose(delta, 2.0 * injector.scales[1])  # magnitude is in standard deviations
    np.testing.assert_array_equal(control.features[600:, [0, 2, 3, 4]], shifted.features[600:, [0, 2, 3, 4]])
    assert (shifted.change_at, shifted.drifted) == (600, ("x1", "prediction"))
    assert (control.change_at, control.drifted) == (None, ())


def test_a_variance_change_scales_the_spread_around_the_mean() -> None:
    injector = DriftInjector(seed=4)
    s = injector.stream(40_000, DriftScenario("variance", change_at=20_000, columns=("x0",), magnitude=2.0))
    before, after = s.features[:20_000, 0], s.features[20_000:, 0]
    assert after.std() / before.std() == pytest.approx(2.0, rel=0.03)
    assert after.mean() == pytest.approx(before.mean(), abs=0.05 * before.std())


def test_a_category_mix_change_moves_the_given_share_to_the_rarest_category() -> None:
    injector = DriftInjector(categorical=1, levels=4, seed=5)
    rarest = int(np.argmin(injector.mixes[0]))
    s = injector.stream(40_000, DriftScenario("category_mix", change_at=20_000, columns=("c0",), magnitude=0.3))
    code = s.features[:, -1]
    share_before = (code[:20_000] == rarest).mean()
    share_after = (code[20_000:] == rarest).mean()
    expected = 0.3 + 0.7 * injector.mixes[0, rarest]
    assert share_before == pytest.approx(injector.mixes[0, rarest], abs=0.01)
    assert share_after == pytest.approx(expected, abs=0.01)


def test_event_times_are_evenly_spaced_and_parts_join_up() -> None:
    injector = DriftInjector(rate=4.0, seed=6)
    first, second = injector.stream(8, part=0), injector.stream(8, part=1, first=8)
    times = np.r_[first.times, second.times]
    np.testing.assert_allclose(np.diff(times), 0.25)
    assert times[0] == injector.start.timestamp()
    assert injector.window_of(8, timedelta(seconds=1)) == 2


def test_training_and_stream_draws_are_independent() -> None:
    injector = DriftInjector(seed=7)
    assert not np.array_equal(injector.training(100).features, injector.stream(100).features)


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (lambda: DriftScenario("mean_shift", change_at=5), "columns: a mean_shift scenario must name the columns"),
        (lambda: DriftScenario("variance", columns=("x0",), magnitude=0.0), "needs a positive scale factor"),
        (lambda: DriftScenario("category_mix", columns=("c0",), magnitude=1.5), r"moves a share in \(0, 1\]"),
        (lambda: DriftScenario("sideways"), "'sideways' is not a valid DriftKind"),
        (lambda: DriftScenario(change_at=-1), "change_at: must be >= 0, got -1"),
    ],
)
def test_bad_scenarios_are_refused_with_a_reason(scenario: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scenario()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (DriftScenario("mean_shift", columns=("x9",)), r"columns: unknown \['x9'\]"),
        (DriftScenario("mean_shift", columns=("c0",)), "columns: c0 is categorical; mean_shift changes numeric"),
        (DriftScenario("category_mix", columns=("x0",), magnitude=0.5), "columns: x0 is numeric; category_mix"),
    ],
)
def test_a_scenario_must_fit_the_injectors_columns(scenario: DriftScenario, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DriftInjector(seed=0).stream(10, scenario)
