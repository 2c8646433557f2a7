"""Deterministic, sticky assignment of units (sessions, buyers) to arms.

u = hash(experiment, unit) in [0, 1). Treatment arm i owns [i/k, i/k + share/k): its slice
grows from a fixed start as the ramp advances, so a unit in treatment stays there when the
ramp goes up, and a halted arm's slice simply falls back to control.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["assign", "unit_position"]


def unit_position(experiment_id: str, unit_id: str) -> float:
    digest = hashlib.blake2b(f"{experiment_id}\x1f{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign(experiment_id: str, unit_id: str, control: str, treatments: Sequence[str], share: float,
           halted: frozenset[str] = frozenset()) -> str:
    """The arm of ``unit_id``; ``share`` is each treatment arm's traffic share."""
    k = len(treatments)
    if k == 0:
        return control
    if not 0 <= share * k <= 1:
        raise ValueError(f"share {share} per arm over {k} arms is not a traffic split")
    u = unit_position(experiment_id, unit_id)
    i = int(u * k)
    arm = treatments[i]
    if arm not in halted and u - i / k < share / k:
        return arm
    return control
