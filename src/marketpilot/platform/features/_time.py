"""Event times as int64 milliseconds since the Unix epoch (UTC), the one unit stores compare.

Milliseconds fit in int64 for any plausible date, compare exactly (floats would not after
2**53 µs), and pack into 8 bytes that Redis Lua and SQLite can compare without parsing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

TimeLike = datetime | int | np.integer
TimesLike = TimeLike | Sequence[datetime] | Sequence[int] | np.ndarray

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_ms(value: TimeLike) -> int:
    """One time as epoch ms; a naive datetime is taken as UTC (as the database stores it)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"expected a datetime or epoch milliseconds (int), got {type(value).__name__}")


def to_ms_array(value: TimesLike, n: int) -> np.ndarray:
    """Times for `n` rows as an int64 array: one time broadcast, or one per row."""
    if isinstance(value, datetime | int | np.integer):
        return np.full(n, to_ms(value), dtype=np.int64)
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.datetime64):
            arr = value.astype("datetime64[ms]").astype(np.int64)
        elif np.issubdtype(value.dtype, np.integer):
            arr = value.astype(np.int64, copy=False)
        else:
            raise TypeError(f"event times must be int64 epoch ms or datetime64, got dtype {value.dtype}")
    else:
        arr = np.fromiter((to_ms(v) for v in value), dtype=np.int64, count=len(value))
    if arr.shape != (n,):
        raise ValueError(f"got {arr.shape[0] if arr.ndim else 1} event times for {n} entities")
    return arr


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))
