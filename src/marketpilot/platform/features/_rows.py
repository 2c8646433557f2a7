"""Rows of a view as numpy arrays, and their fixed-size binary form.

Every backend sees writes in one normal form, :class:`Rows` (checked once, here), and the
backends that persist rows (Redis, the embedded store's SQLite file) share one byte layout,
:class:`RowCodec`: a packed numpy structured record ``event_time | scalars | lists...``.
A fixed record size is what lets a read of many entities decode as one ``np.frombuffer``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from marketpilot.platform.features._time import TimesLike, to_ms_array
from marketpilot.platform.features.views import Feature, FeatureView

ListValues = np.ndarray | Sequence[Sequence[int] | Sequence[str] | np.ndarray]
WriteValues = Mapping[str, np.ndarray | Sequence[float] | ListValues]


@dataclass(slots=True)
class Rows:
    """Whole rows of one view: ``values`` [n, scalars] in view order, ``lists`` [n, length] each."""

    entity_ids: list[str]
    event_time: np.ndarray
    values: np.ndarray
    lists: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.entity_ids)

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(
            entity_ids=[self.entity_ids[i] for i in idx.tolist()],
            event_time=self.event_time[idx],
            values=self.values[idx],
            lists={k: v[idx] for k, v in self.lists.items()},
        )


def empty_list_row(feature: Feature, n: int) -> np.ndarray:
    dtype = feature.dtype.list_dtype
    fill: object = -1 if dtype.kind == "i" else b""
    return np.full((n, feature.dtype.length), fill, dtype=dtype)


def _list_array(view: FeatureView, feature: Feature, raw: ListValues, n: int) -> np.ndarray:
    length = feature.dtype.length
    if isinstance(raw, np.ndarray) and raw.ndim == 2:
        if raw.shape[0] != n:
            raise ValueError(f"feature {feature.name!r} has {raw.shape[0]} values for {n} entities")
        if raw.shape[1] > length:
            raise ValueError(
                f"feature {feature.name!r} of view {view.name!r} holds at most {length} ids, got {raw.shape[1]}"
            )
        rows: Sequence[Sequence[object]] = raw.tolist()
    else:
        if len(raw) != n:
            raise ValueError(f"feature {feature.name!r} has {len(raw)} values for {n} entities")
        rows = raw  # type: ignore[assignment]
    out = empty_list_row(feature, n)
    is_int = feature.dtype.kind == "int64_list"
    width = feature.dtype.width
    for i, items in enumerate(rows):
        if len(items) > length:
            raise ValueError(
                f"feature {feature.name!r} of view {view.name!r} holds at most {length} ids, got {len(items)}"
            )
        if is_int:
            out[i, : len(items)] = np.asarray(items, dtype=np.int64)
            continue
        for j, item in enumerate(items):
            b = item if isinstance(item, bytes) else str(item).encode()
            if len(b) > width:
                raise ValueError(
                    f"id {item!r} of feature {feature.name!r} is {len(b)} bytes; the view allows {width}"
                )
            if not b:
                raise ValueError(f"feature {feature.name!r}: an empty id cannot be stored (it is the padding)")
            out[i, j] = b
    return out


def normalise(view: FeatureView, entity_ids: Sequence[str], values: WriteValues, event_time: TimesLike) -> Rows:
    """Check a write against the view and bring it to :class:`Rows`.

    A write carries every feature of the view (rows are facts as of one time). When one entity
    appears twice, the row with the later event time is kept (the later one on a tie), the
    same outcome as writing them one after the other.
    """
    ids = [str(e) for e in entity_ids]
    n = len(ids)
    given = set(values)
    missing = [f.name for f in view.features if f.name not in given]
    unknown = sorted(given - {f.name for f in view.features})
    if unknown:
        raise ValueError(f"view {view.name!r} has no feature(s): {', '.join(unknown)}")
    if missing:
        raise ValueError(f"write to view {view.name!r} is missing feature(s): {', '.join(missing)}")
    times = to_ms_array(event_time, n)
    scalars = np.empty((n, len(view.scalar_features)), dtype=view.value_dtype)
    for j, f in enumerate(view.scalar_features):
        col = np.asarray(values[f.name], dtype=np.float64)
        if col.shape != (n,):
            raise ValueError(f"feature {f.name!r} has {col.shape[0] if col.ndim else 1} values for {n} entities")
        scalars[:, j] = col
    lists = {f.name: _list_array(view, f, values[f.name], n) for f in view.list_features}  # type: ignore[arg-type]
    rows = Rows(ids, times, scalars, lists)
    if len(set(ids)) != n:
        order = np.lexsort((np.arange(n), times))  # by time, then input order
        last: dict[str, int] = {}
        for i in order.tolist():
            last[ids[i]] = i
        rows = rows.take(np.fromiter(sorted(last.values()), dtype=np.int64))
    return rows


class RowCodec:
    """Packs rows of one view into fixed-size little-endian records and back.

    Layout: ``t`` int64 event time (first 8 bytes, so a Lua script or SQL can compare it),
    ``v`` the scalars in the view's value dtype, then one field per list feature.
    """

    def __init__(self, view: FeatureView) -> None:
        self.view = view
        fields: list[tuple[str, object] | tuple[str, object, tuple[int, ...]]] = [("t", "<i8")]
        k = len(view.scalar_features)
        if k:
            fields.append(("v", view.value_dtype.newbyteorder("<"), (k,)))
        for f in view.list_features:
            fields.append((f"l_{f.name}", f.dtype.list_dtype.newbyteorder("<"), (f.dtype.length,)))
        self.dtype = np.dtype(fields)
        self.itemsize = self.dtype.itemsize

    def pack(self, rows: Rows) -> np.ndarray:
        rec = np.empty(len(rows), dtype=self.dtype)
        rec["t"] = rows.event_time
        if rows.values.shape[1]:
            rec["v"] = rows.values
        for name, arr in rows.lists.items():
            rec[f"l_{name}"] = arr
        return rec

    def encode(self, rows: Rows) -> list[bytes]:
        buf = self.pack(rows).tobytes()
        size = self.itemsize
        return [buf[i : i + size] for i in range(0, len(buf), size)]

    def decode(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Records from blobs that are all present; a blob of the wrong size is an error."""
        bad = next((len(b) for b in blobs if len(b) != self.itemsize), None)
        if bad is not None:
            raise ValueError(
                f"stored row of view {self.view.name!r} is {bad} bytes, the layout needs {self.itemsize}"
            )
        return np.frombuffer(b"".join(blobs), dtype=self.dtype)
