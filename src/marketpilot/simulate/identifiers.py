"""Identifier formats of every simulated entity, and the counters that allocate them.

Ids are a short prefix plus a zero-padded number (`lst_00001234`): readable, sortable, valid
under the domain's id pattern, and the number is the row index into the ground-truth arrays
(listing i is row i of `item_factors.npy`), so joining truth to data needs no lookup table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpilot.simulate.output import ids

FORMATS: dict[str, tuple[str, int]] = {
    "seller": ("sel_", 7),
    "listing": ("lst_", 8),
    "user": ("usr_", 8),
    "session": ("ses_", 9),
    "request": ("req_", 10),
    "order": ("ord_", 9),
    "transaction": ("txn_", 9),
    "shipment": ("shp_", 9),
    "device": ("dev_", 12),
    "instrument": ("fp_", 12),
    "machine": ("mach_", 3),
    "failure": ("fail_", 5),
    "ring": ("ring_", 4),
}


def entity_ids(kind: str, index: np.ndarray) -> pa.Array:
    """Formatted ids of `kind` for integer `index` (negative -> null)."""
    prefix, width = FORMATS[kind]
    return ids(prefix, index, width)


def ip_strings(packed: np.ndarray) -> pa.Array:
    """Dotted IPv4 strings from addresses packed into integers (negative -> null)."""
    packed = np.asarray(packed, dtype=np.int64)
    mask = packed < 0
    safe = np.where(mask, 0, packed)
    octets = [pa.array((safe >> shift) & 0xFF).cast(pa.string()) for shift in (24, 16, 8, 0)]
    out = pc.binary_join_element_wise(*octets, ".")
    if mask.any():
        out = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), out)
    return out


@dataclass
class Counters:
    """Next free number per entity kind that is created while the simulation runs."""

    next: dict[str, int] = field(default_factory=lambda: {
        "session": 0, "request": 0, "order": 0, "transaction": 0, "shipment": 0, "ring": 0})

    def take(self, kind: str, n: int) -> np.ndarray:
        start = self.next[kind]
        self.next[kind] = start + int(n)
        return np.arange(start, start + int(n), dtype=np.int64)
