"""Tumbling windows of live feature vectors, in event time, filled on the request path.

Recording must cost about as much as writing a row into an array, because every scored
request records one vector: each model has a preallocated ``(capacity, d + 1)`` float array
(features, then the prediction) and a row counter. When a window closes its array is handed
over as a :class:`ClosedWindow` and a fresh one is allocated (``np.empty``: no zeroing);
the statistics run later, off the request path (:meth:`DriftMonitor.drain`).

Windows follow the time *of the events* (the caller passes each event's timestamp), never
the wall clock, so a replayed or simulated stream gives the same windows every time:

- by **length** (``WindowSpec.every(timedelta(minutes=5))``): window k covers
  ``[origin + k*length, origin + (k+1)*length)``. An event of a later window closes the
  current one; :meth:`ModelRecorder.advance` closes it from a watermark when traffic stops.
  An event older than the current window is *late*: it is dropped and counted. Beyond
  ``capacity`` events a window keeps a uniform random subset (reservoir sampling, seeded),
  so memory stays bounded and the statistics stay unbiased.
- by **count** (``WindowSpec.count(1000)``): a window closes after ``size`` events; its
  start and end are the first and last event times in it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from marketpilot.platform.monitoring.drift_reference import Reference

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_CAPACITY = 20_000


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """How live traffic is cut into windows: exactly one of `length` and `size`."""

    length: timedelta | None = None
    size: int | None = None
    capacity: int = DEFAULT_CAPACITY
    origin: datetime = EPOCH

    def __post_init__(self) -> None:
        if (self.length is None) == (self.size is None):
            raise ValueError("window: give exactly one of length (time windows) and size (count windows)")
        if self.length is not None and self.length <= timedelta(0):
            raise ValueError(f"window length: must be positive, got {self.length}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"window size: must be at least 1, got {self.size}")
        if self.capacity < 1:
            raise ValueError(f"window capacity: must be at least 1, got {self.capacity}")
        if self.origin.tzinfo is None:
            raise ValueError("window origin: must be timezone-aware")

    @classmethod
    def every(cls, length: timedelta, *, capacity: int = DEFAULT_CAPACITY, origin: datetime = EPOCH) -> WindowSpec:
        return cls(length=length, capacity=capacity, origin=origin)

    @classmethod
    def count(cls, size: int) -> WindowSpec:
        return cls(size=size, capacity=size)

    @property
    def rows(self) -> int:
        """Rows to preallocate per window."""
        return self.size if self.size is not None else self.capacity


@dataclass(frozen=True, eq=False)
class ClosedWindow:
    """One finished window of one model, waiting to be evaluated.

    `values` has shape ``(sampled, d + 1)``: the kept feature vectors, prediction last.
    `observed` counts every event of the window (more than `sampled` after reservoir
    sampling); `late` counts events dropped because their window had already closed.
    """

    model: str
    model_version: str | None
    reference: Reference
    start: datetime
    end: datetime
    values: np.ndarray
    observed: int
    late: int

    @property
    def sampled(self) -> int:
        return int(self.values.shape[0])


def event_seconds(at: datetime | float) -> float:
    """Unix seconds of an event time; a naive datetime is refused (its zone is unknowable)."""
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"event time {at.isoformat()} has no timezone; pass an aware datetime")
        return at.timestamp()
    return float(at)


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ModelRecorder:
    """Collects one model's live vectors into windows. Thread-safe; made by `DriftMonitor.register`."""

    def __init__(
        self,
        model: str,
        reference: Reference,
        spec: WindowSpec,
        on_close: Callable[[ClosedWindow], None],
        *,
        version: str | None = None,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.version = version
        self.reference = reference
        self.spec = spec
        self.width = len(reference.features) + 1
        self._on_close = on_close
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._length = spec.length.total_seconds() if spec.length is not None else 0.0
        self._origin = spec.origin.timestamp()
        self._fresh()
        self._late = 0

    def _fresh(self) -> None:
        self._rows = np.empty((self.spec.rows, self.width), dtype=np.float64)
        self._n = 0  # rows filled
        self._seen = 0  # events in this window (>= _n once the reservoir is full)
        self._first = 0.0  # earliest and latest event time seen in the window
        self._last = 0.0
        self._index: int | None = None  # time windows: index of the open window

    def record(self, features: Sequence[float] | np.ndarray, prediction: float, at: datetime | float) -> None:
        """Add one scored request: its feature vector (in reference order), prediction and event time."""
        if len(features) != self.width - 1:  # numpy would broadcast a single value silently
            raise ValueError(
                f"model {self.model!r}: expected {self.width - 1} features "
                f"({', '.join(self.reference.feature_names)}), got {len(features)}"
            )
        t = event_seconds(at)
        with self._lock:
            if self._length:
                index = int((t - self._origin) // self._length)
                if self._index is None:
                    self._index = index
                elif index != self._index:
                    if index < self._index:
                        self._late += 1
                        return
                    self._close()
                    self._index = index
            n = self._n
            if n < self._rows.shape[0]:
                slot = n
            else:  # reservoir (Algorithm R): the new event replaces a kept one with probability cap/seen
                slot = self._random.randrange(self._seen + 1)
                if slot >= n:
                    self._count(t)
                    return
            row = self._rows[slot]
            row[:-1] = features
            row[-1] = prediction
            if slot == n:
                self._n = n + 1
            self._count(t)
            if self.spec.size is not None and self._n == self.spec.size:
                self._close()

    def _count(self, t: float) -> None:
        if self._seen == 0:
            self._first = self._last = t
        elif t < self._first:
            self._first = t
        elif t > self._last:
            self._last = t
        self._seen += 1

    def record_many(
        self, features: np.ndarray, predictions: np.ndarray, at: Sequence[datetime | float] | np.ndarray
    ) -> None:
        """Record a batch, row by row semantics (same windows as calling `record` per row)."""
        x = np.asarray(features, dtype=np.float64)
        p = np.asarray(predictions, dtype=np.float64)
        times = np.fromiter((event_seconds(a) for a in at), dtype=np.float64, count=len(at))
        if x.ndim != 2 or p.shape != (x.shape[0],) or times.shape != p.shape:
            raise ValueError(
                f"record_many: need features (n, d), predictions (n,), times (n,); "
                f"got {x.shape}, {p.shape}, {times.shape}"
            )
        for i in range(x.shape[0]):
            self.record(x[i], float(p[i]), float(times[i]))

    def advance(self, watermark: datetime | float) -> None:
        """Close the open time window if the watermark (an event time no earlier event will
        follow) has reached its end. No-op for count windows."""
        t = event_seconds(watermark)
        with self._lock:
            if self._length and self._index is not None:
                end = self._origin + (self._index + 1) * self._length
                if t >= end:
                    self._close()

    def close(self) -> None:
        """Close the open window now, whatever its size (shutdown, or a new reference)."""
        with self._lock:
            if self._seen:
                self._close()
            else:
                self._fresh()

    def _close(self) -> None:
        if self._length and self._index is not None:
            start = self._origin + self._index * self._length
            end = start + self._length
        else:
            start, end = self._first, self._last
        if self._seen:
            window = ClosedWindow(
                model=self.model,
                model_version=self.version,
                reference=self.reference,
                start=_dt(start),
                end=_dt(end),
                values=self._rows[: self._n],
                observed=self._seen,
                late=self._late,
            )
            self._late = 0
            self._on_close(window)
        self._fresh()
