"""The embedded online store: one numpy array per view and a dict from entity id to row.

A read is a dict lookup per entity and one fancy-index per array, so one entity with 20
features costs microseconds, with no serialisation. Rows never move except when an array
grows (by half its size, at least a chunk), so the index stays valid; row 0 is a permanent
"absent" row (NaN, padding, time 0), which lets a read gather unknown entities without a
second pass.

With ``path`` set, every write also goes, in one SQLite transaction and before memory is
touched, to a file of packed rows (write-through, not snapshots: a crash loses nothing that
a write returned for), and the arrays are rebuilt from that file the first time a view is
used after start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from marketpilot.platform.features._rows import RowCodec, Rows, empty_list_row
from marketpilot.platform.features._sqlite_rows import SqliteRowFile
from marketpilot.platform.features.online import OnlineStore, Selection, StoredRows
from marketpilot.platform.features.views import FeatureRegistry, FeatureView

CHUNK_ROWS = 1024


class _Table:
    """Arrays of one view; rows ``1..size-1`` are entities, row 0 is the absent row."""

    def __init__(self, view: FeatureView, capacity: int = CHUNK_ROWS) -> None:
        self.view = view
        self.index: dict[str, int] = {}
        self.size = 1
        self.values = np.empty((capacity, len(view.scalar_features)), dtype=view.value_dtype)
        self.event_time = np.empty(capacity, dtype=np.int64)
        self.lists = {f.name: np.empty((capacity, f.dtype.length), f.dtype.list_dtype) for f in view.list_features}
        self.values[0] = np.nan
        self.event_time[0] = 0
        for f in view.list_features:
            self.lists[f.name][0] = empty_list_row(f, 1)[0]

    @property
    def capacity(self) -> int:
        return int(self.event_time.shape[0])

    def reserve(self, extra: int) -> None:
        need = self.size + extra
        if need <= self.capacity:
            return
        cap = max(need, self.capacity + max(self.capacity // 2, CHUNK_ROWS))
        self.values = _grown(self.values, cap, self.size)
        self.event_time = _grown(self.event_time, cap, self.size)
        self.lists = {k: _grown(v, cap, self.size) for k, v in self.lists.items()}

    def nbytes(self) -> int:
        arrays = self.values.nbytes + self.event_time.nbytes + sum(a.nbytes for a in self.lists.values())
        return arrays


def _grown(arr: np.ndarray, capacity: int, used: int) -> np.ndarray:
    # np.empty: pages past `used` are only touched (and counted in RSS) when rows land there.
    out = np.empty((capacity, *arr.shape[1:]), dtype=arr.dtype)
    out[:used] = arr[:used]
    return out


class EmbeddedOnlineStore(OnlineStore):
    """In-process online store; optionally persisted write-through to a SQLite file at ``path``."""

    def __init__(
        self,
        registry: FeatureRegistry | None = None,
        *,
        path: Path | str | None = None,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(registry, metrics=metrics)
        self._tables: dict[str, _Table] = {}
        self._lock = threading.Lock()
        self._file = SqliteRowFile(Path(path)) if path is not None else None
        self._codecs: dict[str, RowCodec] = {}

    def _table(self, view: FeatureView) -> _Table:
        table = self._tables.get(view.name)
        if table is not None and table.view.signature == view.signature:
            return table
        table = _Table(view)
        if self._file is not None:
            codec = self._codec(view)
            for ids, payloads in self._file.load(view.name, view.signature):
                self._apply(table, _records_to_rows(view, codec, ids, payloads), np.ones(len(ids), dtype=bool))
        self._tables[view.name] = table
        return table

    def _codec(self, view: FeatureView) -> RowCodec:
        codec = self._codecs.get(view.name)
        if codec is None or codec.view.signature != view.signature:
            codec = self._codecs[view.name] = RowCodec(view)
        return codec

    def _write_rows(self, view: FeatureView, rows: Rows) -> int:
        with self._lock:
            table = self._table(view)
            pos = np.fromiter((table.index.get(e, 0) for e in rows.entity_ids), dtype=np.intp, count=len(rows))
            accept = table.event_time[pos] <= rows.event_time  # an absent entity (row 0) has time 0
            accept |= pos == 0
            if not accept.any():
                return 0
            if self._file is not None:
                taken = rows.take(np.flatnonzero(accept))
                self._file.upsert(
                    view.name,
                    view.signature,
                    taken.entity_ids,
                    taken.event_time.tolist(),
                    self._codec(view).encode(taken),
                )
            self._apply(table, rows, accept, pos)
            return int(np.count_nonzero(accept))

    @staticmethod
    def _apply(table: _Table, rows: Rows, accept: np.ndarray, pos: np.ndarray | None = None) -> None:
        if pos is None:
            pos = np.fromiter((table.index.get(e, 0) for e in rows.entity_ids), dtype=np.intp, count=len(rows))
        new = np.flatnonzero(pos == 0)
        if new.size:
            table.reserve(new.size)
            fresh = np.arange(table.size, table.size + new.size, dtype=np.intp)
            pos[new] = fresh
            ids = rows.entity_ids
            for i, row in zip(new.tolist(), fresh.tolist(), strict=True):
                table.index[ids[i]] = row
            table.size += new.size
        target = pos[accept]
        table.values[target] = rows.values[accept]
        table.event_time[target] = rows.event_time[accept]
        for name, arr in rows.lists.items():
            table.lists[name][target] = arr[accept]

    def _read_rows(self, view: FeatureView, entity_ids: Sequence[str], sel: Selection) -> StoredRows:
        with self._lock:
            table = self._tables.get(view.name)
            if table is None or table.view.signature != view.signature:
                table = self._table(view)
            index = table.index
            if len(entity_ids) == 1:
                rows = np.array([index.get(entity_ids[0], 0)], dtype=np.intp)
            else:
                rows = np.fromiter((index.get(e, 0) for e in entity_ids), dtype=np.intp, count=len(entity_ids))
            if sel.scalar_cols is None:
                values = table.values[rows]
            else:
                values = table.values[rows[:, None], sel.scalar_cols]
            return StoredRows(
                present=rows > 0,
                event_time=table.event_time[rows],
                values=values,
                lists={name: table.lists[name][rows] for name in sel.list_names},
            )

    def entity_count(self, view: FeatureView | str) -> int:
        with self._lock:
            table = self._tables.get(self._view(view).name)
            return 0 if table is None else table.size - 1

    def nbytes(self, view: FeatureView | str) -> int:
        """Bytes held by the view's arrays (capacity included; the id index is extra)."""
        with self._lock:
            table = self._tables.get(self._view(view).name)
            return 0 if table is None else table.nbytes()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _records_to_rows(view: FeatureView, codec: RowCodec, ids: list[str], payloads: list[bytes]) -> Rows:
    rec = codec.decode(payloads)
    values = rec["v"] if view.scalar_features else np.empty((len(ids), 0), dtype=view.value_dtype)
    return Rows(
        entity_ids=ids,
        event_time=rec["t"].astype(np.int64),
        values=values.astype(view.value_dtype),
        lists={f.name: rec[f"l_{f.name}"] for f in view.list_features},
    )
