"""Geographic holdout design: which regions get the change and which are held out.

Matched-pair randomisation: regions are sorted by pre-period GMV, paired with their
neighbour, and a fair coin decides which of each pair is treated (an odd region out is
assigned by its own coin). Pairing balances size between the groups, which with ten-odd
regions a plain coin flip often does not; the coin keeps the assignment random, which is
what the interval's validity rests on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matched_pair_assignment"]


def matched_pair_assignment(pre_gmv: np.ndarray, *, seed: int) -> np.ndarray:
    """Boolean (R,) treatment flags for regions with pre-period GMV ``pre_gmv``."""
    pre_gmv = np.asarray(pre_gmv, dtype=np.float64)
    if pre_gmv.ndim != 1 or pre_gmv.size < 4:
        raise ValueError("a geo holdout needs at least 4 regions")
    if np.any(pre_gmv <= 0):
        raise ValueError("every region needs positive pre-period GMV")
    rng = np.random.default_rng(seed)
    order = np.argsort(pre_gmv, kind="stable")
    treated = np.zeros(pre_gmv.size, dtype=bool)
    for start in range(0, order.size - 1, 2):
        pair = order[start:start + 2]
        treated[pair[rng.integers(2)]] = True
    if order.size % 2:
        treated[order[-1]] = bool(rng.integers(2))
    return treated
