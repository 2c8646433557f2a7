"""The Redis online store: one key per (view, entity) holding one packed row.

Key ``{prefix}{view}:{signature}:{entity}``, value the fixed-size
:class:`~marketpilot.platform.features._rows.RowCodec` record (8-byte event time, then the
scalars and lists). A read of any number of entities is one ``MGET`` (``GET`` for one) — one round trip, and
decoding is one ``np.frombuffer`` over the joined values. The layout signature in the key
means a changed view never decodes rows of its old layout; they expire or are overwritten.

A write is one Lua script per chunk of entities, all chunks in one pipeline: the script
compares each stored row's event time (its first 8 bytes) with the new one and only
replaces a row that is not newer, atomically, so concurrent materialisers cannot lose the
newer row. On a Redis Cluster all keys of one script call must share a slot; this store
targets a single primary (with replicas), as the distributed profile runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import redis
from prometheus_client import CollectorRegistry

from marketpilot.platform.features._rows import RowCodec, Rows, empty_list_row
from marketpilot.platform.features.online import OnlineStore, Selection, StoredRows
from marketpilot.platform.features.views import FeatureRegistry, FeatureView

WRITE_CHUNK = 1000

_WRITE_NEWER = """
local ttl = tonumber(ARGV[1])
local applied = 0
for i, key in ipairs(KEYS) do
    local row = ARGV[i + 1]
    local old = redis.call('GET', key)
    if (not old) or string.len(old) ~= string.len(row)
        or struct.unpack('<i8', old) <= struct.unpack('<i8', row) then
        if ttl > 0 then
            redis.call('SET', key, row, 'PX', ttl)
        else
            redis.call('SET', key, row)
        end
        applied = applied + 1
    end
end
return applied
"""


class RedisOnlineStore(OnlineStore):
    """Online store on Redis. ``client`` is a URL or a ``redis.Redis`` (binary responses);
    ``key_ttl`` bounds how long an entity not written again keeps memory."""

    def __init__(
        self,
        client: str | redis.Redis,
        registry: FeatureRegistry | None = None,
        *,
        prefix: str = "mp:feat:",
        key_ttl: timedelta | None = None,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(registry, metrics=metrics)
        self._owns_client = isinstance(client, str)
        self._redis = redis.Redis.from_url(client) if isinstance(client, str) else client
        if self._redis.get_encoder().decode_responses:
            raise ValueError("RedisOnlineStore needs a client with decode_responses=False (rows are binary)")
        self.prefix = prefix
        self._ttl_ms = 0 if key_ttl is None else int(key_ttl / timedelta(milliseconds=1))
        self._sha: str | None = None
        self._codecs: dict[str, RowCodec] = {}
        self._absent: dict[str, np.ndarray] = {}

    def _codec(self, view: FeatureView) -> RowCodec:
        codec = self._codecs.get(view.name)
        if codec is None or codec.view.signature != view.signature:
            codec = self._codecs[view.name] = RowCodec(view)
            self._absent[view.name] = _absent_record(view, codec)
        return codec

    def key_prefix(self, view: FeatureView) -> str:
        return f"{self.prefix}{view.name}:{view.signature}:"

    def _write_rows(self, view: FeatureView, rows: Rows) -> int:
        blobs = self._codec(view).encode(rows)
        head = self.key_prefix(view)
        keys = [head + e for e in rows.entity_ids]
        try:
            return self._run_writes(keys, blobs)
        except redis.exceptions.NoScriptError:  # the server lost its script cache (restart, SCRIPT FLUSH)
            self._sha = None
            return self._run_writes(keys, blobs)

    def _run_writes(self, keys: list[str], blobs: list[bytes]) -> int:
        # EVALSHA straight in the pipeline: redis-py's Script objects would add a SCRIPT EXISTS
        # round trip to every write. A chunk whose rows were applied before a NoScriptError is
        # simply applied again on retry (the same rows at the same times: idempotent).
        if self._sha is None:
            self._sha = str(self._redis.script_load(_WRITE_NEWER))
        pipe = self._redis.pipeline(transaction=False)
        for start in range(0, len(keys), WRITE_CHUNK):
            chunk = keys[start : start + WRITE_CHUNK]
            pipe.evalsha(self._sha, len(chunk), *chunk, self._ttl_ms, *blobs[start : start + WRITE_CHUNK])
        return int(sum(pipe.execute()))

    def _read_rows(self, view: FeatureView, entity_ids: Sequence[str], sel: Selection) -> StoredRows:
        codec = self._codec(view)
        head = self.key_prefix(view)
        raw: list[bytes | None]
        if len(entity_ids) == 1:  # GET: the same single round trip, with less client-side work
            raw = [self._redis.get(head + entity_ids[0])]  # type: ignore[list-item]
        else:
            raw = self._redis.mget([head + e for e in entity_ids])  # type: ignore[assignment]
        present = np.fromiter((b is not None for b in raw), dtype=bool, count=len(raw))
        if present.all():
            rec = codec.decode(raw)  # type: ignore[arg-type]
        else:
            absent = self._absent[view.name]
            rec = np.repeat(absent, len(raw))
            if present.any():
                rec[present] = codec.decode([b for b in raw if b is not None])
        if view.scalar_features:
            values = rec["v"] if sel.scalar_cols is None else rec["v"][:, sel.scalar_cols]
            values = values.astype(view.value_dtype)  # native byte order, owned (frombuffer is read-only)
        else:
            values = np.empty((len(raw), 0), dtype=view.value_dtype)
        return StoredRows(
            present=present,
            event_time=rec["t"].astype(np.int64),
            values=values,
            lists={name: rec[f"l_{name}"].copy() for name in sel.list_names},
        )

    def delete_view(self, view: FeatureView | str) -> int:
        """Remove every row of a view (all layouts); returns keys deleted. Scans, so not for hot paths."""
        v = self._view(view)
        deleted = 0
        batch: list[bytes] = []
        for key in self._redis.scan_iter(match=f"{self.prefix}{v.name}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(self._redis.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(self._redis.unlink(*batch))
        return deleted

    def close(self) -> None:
        if self._owns_client:
            self._redis.close()


def _absent_record(view: FeatureView, codec: RowCodec) -> np.ndarray:
    rec = np.zeros(1, dtype=codec.dtype)
    if view.scalar_features:
        rec["v"] = np.nan
    for f in view.list_features:
        rec[f"l_{f.name}"] = empty_list_row(f, 1)
    return rec
