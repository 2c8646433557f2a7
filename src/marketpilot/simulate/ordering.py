"""A buffer that turns events generated day by day into files sorted by time.

The simulation runs one day at a time, but a session that starts at 23:58 ends after
midnight and a rating arrives days after its purchase. Events are pushed with whatever time
they have; `pop_before(t)` returns, sorted by time, everything earlier than `t` and keeps the
rest for later days. The result: every event file is globally sorted by timestamp (ties
broken by the order the events were pushed), while no more than a few days of future events
are ever held in memory.
"""

from __future__ import annotations

import numpy as np

Columns = dict[str, np.ndarray]


class TimeOrderedBuffer:
    def __init__(self, time_column: str) -> None:
        self.time_column = time_column
        self._parts: list[Columns] = []

    def push(self, columns: Columns) -> None:
        if len(columns[self.time_column]):
            self._parts.append(columns)

    def pop_before(self, t: int) -> Columns | None:
        """Events with time < t, sorted by time; None if there are none."""
        if not self._parts:
            return None
        merged = {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]}
        times = merged[self.time_column]
        due = times < t
        rest = {k: v[~due] for k, v in merged.items()}
        self._parts = [rest] if len(rest[self.time_column]) else []
        if not due.any():
            return None
        order = np.argsort(times[due], kind="stable")
        return {k: v[due][order] for k, v in merged.items()}

    def __len__(self) -> int:
        return sum(len(p[self.time_column]) for p in self._parts)
