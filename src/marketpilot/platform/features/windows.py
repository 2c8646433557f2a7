"""Sliding event-time windows of counts and sums per key, at bucket resolution.

Velocity features ("payments by this card in the last hour") must count by *event* time:
events arrive late and out of order, and a count keyed on arrival time would move with the
queue's lag. Each key keeps a count and a sum per time bucket (one minute by default); a
window of length W at time t is the W / bucket buckets ending with t's bucket:

    buckets b with  floor(t / bucket) - W / bucket  <  b  <=  floor(t / bucket)

So an event that arrives late still lands in its own bucket and is counted by every window
that covers it, and the batch backfill (`backfill.py`) computes exactly the same number with
the same integer arithmetic in SQL. An event older than the longest window before the key's
latest event can no longer change any window that is still read, and is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import numpy as np


def window_label(window: timedelta) -> str:
    """``1h``, ``24h``, ``15m``, ``7d``: a short name for feature names like ``count_1h``."""
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0 and seconds >= 7 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class WindowedCounter:
    """Counts and sums of events per key over several sliding windows (event time).

    >>> from datetime import timedelta
    >>> c = WindowedCounter([timedelta(hours=1), timedelta(hours=24)])
    >>> c.add("card-1", 10 * 3_600_000, amount=500)
    True
    >>> c.add("card-1", 8 * 3_600_000, amount=200)   # two hours earlier, arriving late
    True
    >>> counts, sums = c.totals("card-1")
    >>> counts.tolist(), sums.tolist()
    ([1.0, 2.0], [500.0, 700.0])
    """

    def __init__(self, windows: Sequence[timedelta], bucket: timedelta = timedelta(minutes=1)) -> None:
        if not windows:
            raise ValueError("a WindowedCounter needs at least one window")
        if bucket <= timedelta(0):
            raise ValueError("bucket must be positive")
        for w in windows:
            if w <= timedelta(0) or w % bucket:
                raise ValueError(f"window {w} must be a positive multiple of the bucket {bucket}")
        self.windows = tuple(windows)
        self.bucket_ms = bucket // timedelta(milliseconds=1)
        self.spans = np.array([w // bucket for w in windows], dtype=np.int64)
        self.keep = int(self.spans.max())
        self._buckets: dict[str, dict[int, list[float]]] = {}
        self._latest: dict[str, int] = {}

    def add(self, key: str, ts_ms: int, amount: float = 0.0) -> bool:
        """Count one event of `key` at event time `ts_ms`; False if too old to matter (dropped)."""
        b = ts_ms // self.bucket_ms
        latest = self._latest.get(key)
        if latest is not None and b <= latest // self.bucket_ms - self.keep:
            return False
        buckets = self._buckets.setdefault(key, {})
        cell = buckets.get(b)
        if cell is None:
            buckets[b] = [1.0, float(amount)]
        else:
            cell[0] += 1.0
            cell[1] += float(amount)
        if latest is None or ts_ms > latest:
            self._latest[key] = ts_ms
            if latest is not None and b > latest // self.bucket_ms:
                self._evict(key, b)
        return True

    def _evict(self, key: str, current_bucket: int) -> None:
        floor = current_bucket - self.keep
        buckets = self._buckets[key]
        for old in [k for k in buckets if k <= floor]:
            del buckets[old]

    def latest(self, key: str) -> int | None:
        """Event time (ms) of the key's newest event, or None for an unknown key."""
        return self._latest.get(key)

    def totals(self, key: str, at_ms: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(counts, sums) per window, as float64 arrays, for windows ending at `at_ms`
        (default: the key's latest event). Events after `at_ms` are not counted."""
        buckets = self._buckets.get(key)
        if not buckets:
            return np.zeros(len(self.spans)), np.zeros(len(self.spans))
        at = self._latest[key] if at_ms is None else at_ms
        starts = np.fromiter(buckets.keys(), dtype=np.int64, count=len(buckets))
        cells = np.array(list(buckets.values()), dtype=np.float64)  # [m, (count, sum)]
        age = (at // self.bucket_ms - starts)[:, None]
        inside = ((age >= 0) & (age < self.spans[None, :])).astype(np.float64)  # [m, windows]
        return cells[:, 0] @ inside, cells[:, 1] @ inside

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)
        self._latest.pop(key, None)

    def keys(self) -> Iterator[str]:
        return iter(list(self._buckets))

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def __len__(self) -> int:
        return len(self._buckets)
