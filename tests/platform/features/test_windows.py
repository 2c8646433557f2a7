from __future__ import annotations

import doctest
from datetime import timedelta

import pytest

from marketpilot.platform.features import windows
from marketpilot.platform.features.windows import WindowedCounter, window_label

MIN = 60_000
HOUR = 60 * MIN


def counter() -> WindowedCounter:
    return WindowedCounter([timedelta(hours=1), timedelta(hours=24)])


def test_events_are_counted_in_every_window_that_covers_them() -> None:
    c = counter()
    for ts in (0, 30 * MIN, 2 * HOUR, 2 * HOUR + MIN):
        c.add("k", ts, amount=10)
    counts, sums = c.totals("k")
    assert counts.tolist() == [2.0, 4.0]
    assert sums.tolist() == [20.0, 40.0]


def test_out_of_order_events_within_the_window_are_counted_like_in_order_ones() -> None:
    times = [5 * HOUR, 5 * HOUR - 10 * MIN, 4 * HOUR + 30 * MIN, 5 * HOUR - 59 * MIN, 3 * HOUR]
    shuffled, ordered = counter(), counter()
    for ts in times:
        shuffled.add("k", ts, 1)
    for ts in sorted(times):
        ordered.add("k", ts, 1)
    assert shuffled.totals("k")[0].tolist() == ordered.totals("k")[0].tolist() == [4.0, 5.0]


def test_windows_slide_at_bucket_resolution() -> None:
    c = counter()
    c.add("k", 10 * MIN + 59_999)  # bucket 10
    assert c.totals("k", at_ms=69 * MIN)[0][0] == 1  # bucket 69 - 10 = 59 < 60: inside
    assert c.totals("k", at_ms=70 * MIN)[0][0] == 0  # bucket 70 - 10 = 60: slid out
    assert c.totals("k", at_ms=10 * MIN - 1)[0].tolist() == [0.0, 0.0]  # before the event


def test_an_event_older_than_the_longest_window_is_dropped() -> None:
    c = counter()
    c.add("k", 30 * HOUR)
    assert c.add("k", 30 * HOUR - 24 * HOUR) is False
    assert c.add("k", 30 * HOUR - 24 * HOUR + MIN) is True
    assert c.totals("k")[0].tolist() == [1.0, 2.0]


def test_old_buckets_are_evicted_as_the_key_moves_on() -> None:
    c = counter()
    for hour in range(0, 100, 5):
        c.add("k", hour * HOUR)
    assert len(c._buckets["k"]) <= 5  # only the last 24 h of buckets are kept


def test_keys_are_independent() -> None:
    c = counter()
    c.add("a", HOUR)
    c.add("b", HOUR)
    c.add("b", HOUR + 1)
    assert c.totals("a")[0][0] == 1 and c.totals("b")[0][0] == 2
    assert c.totals("unknown")[0].tolist() == [0.0, 0.0]
    assert c.latest("b") == HOUR + 1 and c.latest("unknown") is None


@pytest.mark.parametrize(
    ("windows", "bucket", "message"),
    [
        ([], timedelta(minutes=1), "a WindowedCounter needs at least one window"),
        ([timedelta(seconds=90)], timedelta(minutes=1), "window 0:01:30 must be a positive multiple of the bucket 0:01:00"),
        ([timedelta(hours=1)], timedelta(0), "bucket must be positive"),
    ],
)
def test_bad_windows_are_rejected(windows: list[timedelta], bucket: timedelta, message: str) -> None:
    with pytest.raises(ValueError) as err:
        WindowedCounter(windows, bucket)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("window", "label"),
    [(timedelta(hours=1), "1h"), (timedelta(hours=24), "24h"), (timedelta(minutes=15), "15m"),
     (timedelta(days=7), "7d"), (timedelta(seconds=30), "30s")],
)
def test_window_labels_are_short(window: timedelta, label: str) -> None:
    assert window_label(window) == label


def test_the_docstring_example_runs() -> None:
    result = doctest.testmod(windows)
    assert result.attempted > 0 and result.failed == 0
