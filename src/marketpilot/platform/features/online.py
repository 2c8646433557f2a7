"""The online store contract: write rows with event times, read many entities in one call.

Every backend (in-process arrays, Redis) implements two hooks, ``_write_rows`` and
``_read_rows``; everything a caller can observe beyond storage (input checks, feature
selection, the present and stale masks, the stale-read metric) lives here once, so the
backends cannot drift apart and one contract test suite covers them all.

Rules every backend keeps:

* a row is written whole, with one event time per entity;
* a write whose event time is at or after the stored row's replaces it; an older one is
  ignored (events arrive out of order and at least once);
* a read returns rows in the order asked, absent entities as NaN / padding with
  ``present`` False; ``stale`` marks present rows older than the view's SLA at ``now``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from marketpilot.platform.features._metrics import stale_reads_counter
from marketpilot.platform.features._rows import Rows, WriteValues, normalise
from marketpilot.platform.features._time import TimeLike, TimesLike, now_ms, to_ms
from marketpilot.platform.features.views import FeatureRegistry, FeatureView


@dataclass(slots=True)
class FeatureBatch:
    """Features of many entities, row ``i`` for ``entity_ids[i]``.

    ``values`` is [n_entities, len(features)] in the view's value dtype (float32 or float64)
    holding the selected scalar features; ``lists`` maps each selected list feature to an
    [n_entities, length] array (int64 padded with -1, or str padded with ''); ``event_time``
    is int64 epoch ms (0 where absent).
    """

    view: str
    entity_ids: Sequence[str]
    features: tuple[str, ...]
    values: np.ndarray
    event_time: np.ndarray
    present: np.ndarray
    stale: np.ndarray
    lists: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entity_ids)

    def column(self, name: str) -> np.ndarray:
        """One scalar feature for every entity."""
        try:
            return self.values[:, self.features.index(name)]
        except ValueError:
            raise KeyError(f"feature {name!r} is not a scalar in this batch ({', '.join(self.features)})") from None

    def ids(self, name: str, row: int) -> list[str] | list[int]:
        """A list feature of one entity without its padding."""
        arr = self.lists[name][row]
        if arr.dtype.kind == "i":
            return [int(x) for x in arr if x != -1]
        return [str(x) for x in arr if x != ""]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which stored columns a read returns; computed once per (view, features) and cached."""

    scalar_names: tuple[str, ...]
    scalar_cols: np.ndarray | None  # None: every scalar, in view order (no column gather)
    list_names: tuple[str, ...]


def _select(view: FeatureView, features: Sequence[str] | None) -> Selection:
    if features is None:
        return Selection(tuple(f.name for f in view.scalar_features), None, tuple(f.name for f in view.list_features))
    for name in features:
        view.feature(name)  # raises KeyError naming the view and the feature
    scalar_pos = {f.name: i for i, f in enumerate(view.scalar_features)}
    scalars = tuple(n for n in features if n in scalar_pos)
    lists = tuple(n for n in features if n not in scalar_pos)
    cols = np.fromiter((scalar_pos[n] for n in scalars), dtype=np.intp, count=len(scalars))
    everything = scalars == tuple(f.name for f in view.scalar_features)
    return Selection(scalars, None if everything else cols, lists)


@dataclass(slots=True)
class StoredRows:
    """What a backend returns for a read: selected columns only, in the order asked."""

    present: np.ndarray
    event_time: np.ndarray
    values: np.ndarray
    lists: dict[str, np.ndarray]


class OnlineStore(ABC):
    """Base of the online backends. ``registry`` resolves views given by name;
    ``metrics`` is the Prometheus registry for the stale-read counter (default: global)."""

    def __init__(
        self, registry: FeatureRegistry | None = None, *, metrics: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry or FeatureRegistry()
        self._stale_counter = stale_reads_counter(metrics)
        self._stale_children: dict[str, Counter] = {}
        self._selections: dict[tuple[str, str, tuple[str, ...] | None], Selection] = {}
        self._sel_lock = threading.Lock()

    def _view(self, view: FeatureView | str) -> FeatureView:
        return self.registry.resolve(view)

    def write(
        self,
        view: FeatureView | str,
        entity_ids: Sequence[str],
        values: WriteValues,
        event_time: TimesLike,
    ) -> int:
        """Write whole rows; returns how many replaced or created a row (older ones are ignored).

        ``values`` maps every feature of the view to one value per entity (a list feature to
        one sequence of ids per entity, newest first); ``event_time`` is one time for all or
        one per entity (datetimes, or int64 epoch ms).
        """
        v = self._view(view)
        if len(entity_ids) == 0:
            return 0
        return self._write_rows(v, normalise(v, entity_ids, values, event_time))

    def read(
        self,
        view: FeatureView | str,
        entity_ids: Sequence[str],
        features: Sequence[str] | None = None,
        now: TimeLike | None = None,
        *,
        record_stale: bool = True,
    ) -> FeatureBatch:
        """Features of many entities in one call, rows in the order of ``entity_ids``.

        ``features`` selects and orders a subset (default: all, in view order); ``now``
        (datetime or epoch ms, default the wall clock) is the instant staleness is judged at.
        ``record_stale=False`` keeps the read out of the stale-read metric: for the platform's
        own reads (a materialiser resuming from stored rows), which serve no model.
        """
        v = self._view(view)
        key = (v.name, v.signature, None if features is None else tuple(features))
        sel = self._selections.get(key)
        if sel is None:
            sel = _select(v, features)
            with self._sel_lock:
                self._selections[key] = sel
        ids = entity_ids if isinstance(entity_ids, list | tuple) else list(entity_ids)
        got = self._read_rows(v, ids, sel)
        at = now_ms() if now is None else to_ms(now)
        stale = got.present & ((at - got.event_time) > v.staleness_sla_ms)
        n_stale = int(np.count_nonzero(stale))
        if n_stale and record_stale:
            child = self._stale_children.get(v.name)
            if child is None:
                child = self._stale_children[v.name] = self._stale_counter.labels(view=v.name)
            child.inc(n_stale)
        lists = got.lists
        for f in sel.list_names:
            arr = lists[f]
            if arr.dtype.kind == "S":
                lists[f] = np.char.decode(arr, "utf-8")
        return FeatureBatch(
            view=v.name,
            entity_ids=ids,
            features=sel.scalar_names,
            values=got.values,
            event_time=got.event_time,
            present=got.present,
            stale=stale,
            lists=lists,
        )

    @abstractmethod
    def _write_rows(self, view: FeatureView, rows: Rows) -> int:
        """Store rows (unique entity ids) unless the stored row is newer; return rows applied."""

    @abstractmethod
    def _read_rows(self, view: FeatureView, entity_ids: Sequence[str], sel: Selection) -> StoredRows:
        """Selected columns for the entities, absent ones as NaN / padding / time 0."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or files; the default holds none."""

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
