"""Event-time windows: where they start and end, what closes them, and what they keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from marketpilot.platform.monitoring.drift import ClosedWindow, ModelRecorder, Reference, WindowSpec

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def reference(d: int = 2) -> Reference:
    rng = np.random.default_rng(0)
    return Reference.fit(rng.normal(size=(100, d)), rng.random(100), names=[f"f{i}" for i in range(d)])


def recorder(spec: WindowSpec, d: int = 2) -> tuple[ModelRecorder, list[ClosedWindow]]:
    closed: list[ClosedWindow] = []
    return ModelRecorder("m", reference(d), spec, closed.append, version="3"), closed


def test_time_windows_are_aligned_tumbling_intervals_of_event_time() -> None:
    rec, closed = recorder(WindowSpec.every(timedelta(minutes=5)))
    rec.record([1.0, 2.0], 0.5, T0 + timedelta(minutes=1))
    rec.record([3.0, 4.0], 0.6, T0 + timedelta(minutes=4, seconds=59))
    assert closed == []
    rec.record([5.0, 6.0], 0.7, T0 + timedelta(minutes=5))  # first event of the next window closes the first
    (w,) = closed
    assert (w.start, w.end) == (T0, T0 + timedelta(minutes=5))
    assert (w.model, w.model_version, w.observed, w.sampled) == ("m", "3", 2, 2)
    np.testing.assert_array_equal(w.values, [[1.0, 2.0, 0.5], [3.0, 4.0, 0.6]])


def test_windows_without_events_are_skipped_not_reported_empty() -> None:
    rec, closed = recorder(WindowSpec.every(timedelta(minutes=1)))
    rec.record([0.0, 0.0], 0.0, T0)
    rec.record([0.0, 0.0], 0.0, T0 + timedelta(hours=1))
    assert [w.start for w in closed] == [T0]


def test_a_late_event_is_dropped_and_counted_in_the_next_closed_window() -> None:
    rec, closed = recorder(WindowSpec.every(timedelta(minutes=1)))
    rec.record([0.0, 0.0], 0.0, T0)
    rec.record([1.0, 1.0], 0.0, T0 + timedelta(minutes=1))
    rec.record([9.0, 9.0], 0.0, T0 + timedelta(seconds=30))  # belongs to the closed window
    rec.close()
    assert [(w.observed, w.late) for w in closed] == [(1, 0), (1, 1)]


def test_advance_closes_a_window_once_the_watermark_reaches_its_end() -> None:
    rec, closed = recorder(WindowSpec.every(timedelta(minutes=1)))
    rec.record([0.0, 0.0], 0.0, T0 + timedelta(seconds=10))
    rec.advance(T0 + timedelta(seconds=59))
    assert closed == []
    rec.advance(T0 + timedelta(minutes=1))
    assert [w.end for w in closed] == [T0 + timedelta(minutes=1)]


def test_count_windows_close_after_size_events_and_span_their_event_times() -> None:
    rec, closed = recorder(WindowSpec.count(3))
    for i, minute in enumerate([7, 2, 5, 9]):
        rec.record([float(i), 0.0], 0.0, T0 + timedelta(minutes=minute))
    (w,) = closed
    assert (w.start, w.end, w.observed) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=7), 3)
    rec.advance(T0 + timedelta(days=1))  # count windows ignore watermarks
    assert len(closed) == 1
    rec.close()
    assert closed[1].observed == 1


def test_a_full_time_window_keeps_a_uniform_sample_of_capacity_rows() -> None:
    rec, closed = recorder(WindowSpec.every(timedelta(hours=1), capacity=1_000), d=1)
    values = np.arange(10_000, dtype=float)
    rec.record_many(values[:, None], np.zeros(10_000), T0.timestamp() + values * 0.1)
    rec.close()
    (w,) = closed
    assert (w.observed, w.sampled) == (10_000, 1_000)
    kept = w.values[:, 0]
    assert np.unique(kept).size == 1_000
    # Algorithm R keeps each event with probability 1/10: the kept mean is near the full mean
    assert abs(kept.mean() - values.mean()) < 3 * values.std() / np.sqrt(1_000)
    assert (kept >= 5_000).mean() == pytest.approx(0.5, abs=0.06)


def test_recording_the_wrong_number_of_features_names_them() -> None:
    rec, _ = recorder(WindowSpec.count(10))
    with pytest.raises(ValueError, match=r"model 'm': expected 2 features \(f0, f1\), got 1"):
        rec.record([1.0], 0.5, T0)


def test_a_naive_event_time_is_refused() -> None:
    rec, _ = recorder(WindowSpec.count(10))
    with pytest.raises(ValueError, match="has no timezone; pass an aware datetime"):
        rec.record([1.0, 2.0], 0.5, datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "window: give exactly one of length"),
        ({"length": timedelta(0)}, "window length: must be positive"),
        ({"size": 0}, "window size: must be at least 1, got 0"),
        ({"size": 5, "capacity": 0}, "window capacity: must be at least 1, got 0"),
    ],
)
def test_window_spec_names_the_bad_setting(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WindowSpec(**kwargs)  # type: ignore[arg-type]
