"""Declarative feature views: what a model may read, its types, and how fresh it must be.

A :class:`FeatureView` is a named group of features about one kind of entity (a user, a
listing, a device) that are written together with one event time. Writing whole rows with one
event time is what makes "newer wins" and point-in-time joins well defined: a row is a fact
about the entity *as of* that time.

Views are plain values declared in code and collected in a :class:`FeatureRegistry`; the
online stores and the offline builder take the view object (or resolve its name there), so a
model's feature list is checked against one definition everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

Kind = Literal["float32", "float64", "int64", "int64_list", "str_list"]
_SCALAR_KINDS = ("float32", "float64", "int64")


@dataclass(frozen=True)
class DType:
    """A feature's storage type.

    Scalars (``float32``, ``float64``, ``int64``) are served as columns of one float matrix;
    lists (``int64_list``, ``str_list``) hold up to ``length`` ids, newest first, padded with
    ``-1`` or ``""``. ``width`` bounds a ``str_list`` id in UTF-8 bytes, so a row has a fixed
    size and a batch of rows decodes as one numpy array.
    """

    kind: Kind
    length: int = 1
    width: int = 0

    def __post_init__(self) -> None:
        if self.kind in _SCALAR_KINDS and (self.length != 1 or self.width != 0):
            raise ValueError(f"a {self.kind} feature is a scalar: length must be 1 and width 0")
        if self.kind in ("int64_list", "str_list") and self.length < 1:
            raise ValueError(f"a {self.kind} feature needs length >= 1, got {self.length}")
        if self.kind == "str_list" and self.width < 1:
            raise ValueError(f"a str_list feature needs width >= 1 (bytes per id), got {self.width}")

    @property
    def is_list(self) -> bool:
        return self.kind in ("int64_list", "str_list")

    @property
    def list_dtype(self) -> np.dtype[np.generic]:
        """Element type of a list feature as stored (ids as int64 or fixed-width UTF-8 bytes)."""
        if self.kind == "int64_list":
            return np.dtype("<i8")
        if self.kind == "str_list":
            return np.dtype(f"S{self.width}")
        raise TypeError(f"{self.kind} is not a list type")

    def __str__(self) -> str:
        if self.kind == "int64_list":
            return f"int64_list[{self.length}]"
        if self.kind == "str_list":
            return f"str_list[{self.length}x{self.width}]"
        return self.kind


float32 = DType("float32")
float64 = DType("float64")
int64 = DType("int64")


def int64_list(length: int) -> DType:
    """Up to `length` integer ids, newest first, padded with -1."""
    return DType("int64_list", length)


def str_list(length: int, width: int = 32) -> DType:
    """Up to `length` string ids of at most `width` UTF-8 bytes, newest first, padded with ''."""
    return DType("str_list", length, width)


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: DType = float32
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"feature name must be an identifier, got {self.name!r}")


@dataclass(frozen=True)
class EventSource:
    """The view is kept fresh by streaming materialisers reacting to these CloudEvents types."""

    event_types: tuple[str, ...]


@dataclass(frozen=True)
class TableSource:
    """Offline history: a database table (or DuckDB relation) with one row per entity and time."""

    table: str
    entity_column: str
    timestamp_column: str = "event_time"


@dataclass(frozen=True)
class FileSource:
    """Offline history in a Parquet file (or glob of files) with one row per entity and time."""

    path: Path | str
    entity_column: str
    timestamp_column: str = "event_time"


Source = EventSource | TableSource | FileSource


@dataclass(frozen=True)
class FeatureView:
    """A named set of features about one entity, written together with one event time.

    ``entity`` is the join key's name (``"user_id"``, ``"listing_id"``): the online stores key
    rows by its value and the offline builder joins a spine column of that name.
    ``staleness_sla`` is how old a row may be at read time before it is flagged stale.
    """

    name: str
    entity: str
    features: Sequence[Feature]
    staleness_sla: timedelta
    source: Source | None = None
    description: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        self._validate()
        object.__setattr__(self, "_index", {f.name: i for i, f in enumerate(self.features)})

    def _validate(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-." for c in self.name):
            raise ValueError(f"view name must be letters, digits, '_', '-' or '.', got {self.name!r}")
        if not self.entity.isidentifier():
            raise ValueError(f"view {self.name!r}: entity must be an identifier, got {self.entity!r}")
        if not self.features:
            raise ValueError(f"view {self.name!r} has no features")
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"view {self.name!r} declares feature(s) twice: {', '.join(dupes)}")
        if self.entity in names:
            raise ValueError(f"view {self.name!r}: a feature may not be named like the entity {self.entity!r}")
        if self.staleness_sla <= timedelta(0):
            raise ValueError(f"view {self.name!r}: staleness_sla must be positive")

    def feature(self, name: str) -> Feature:
        try:
            return self.features[self._index[name]]
        except KeyError:
            raise KeyError(f"view {self.name!r} has no feature {name!r}") from None

    @cached_property
    def scalar_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if not f.dtype.is_list)

    @cached_property
    def list_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.dtype.is_list)

    @cached_property
    def value_dtype(self) -> np.dtype[np.floating]:
        """float32 when every scalar is float32 (half the memory), else float64.

        int64 scalars are held in float64, exact up to 2**53: counts and ids of that size fit.
        """
        if all(f.dtype.kind == "float32" for f in self.scalar_features):
            return np.dtype(np.float32)
        return np.dtype(np.float64)

    @cached_property
    def staleness_sla_ms(self) -> int:
        return int(self.staleness_sla / timedelta(milliseconds=1))

    @cached_property
    def signature(self) -> str:
        """A short hash of the stored layout; persisted rows of another layout are never decoded."""
        layout = "|".join(f"{f.name}:{f.dtype}" for f in self.features)
        return hashlib.blake2b(f"{self.entity}|{layout}".encode(), digest_size=4).hexdigest()


class FeatureRegistry:
    """The views a process knows, by name. Registering a different view under a taken name fails."""

    def __init__(self, views: Iterable[FeatureView] = ()) -> None:
        self._views: dict[str, FeatureView] = {}
        for view in views:
            self.register(view)

    def register(self, view: FeatureView) -> FeatureView:
        existing = self._views.get(view.name)
        if existing is not None:
            if existing != view:
                raise ValueError(f"feature view {view.name!r} is already registered with another definition")
            return existing
        self._views[view.name] = view
        return view

    def get(self, name: str) -> FeatureView:
        try:
            return self._views[name]
        except KeyError:
            known = ", ".join(sorted(self._views)) or "none"
            raise KeyError(f"unknown feature view {name!r} (registered: {known})") from None

    def resolve(self, view: FeatureView | str) -> FeatureView:
        return self.get(view) if isinstance(view, str) else view

    def __contains__(self, name: object) -> bool:
        return name in self._views

    def __iter__(self) -> Iterator[FeatureView]:
        return iter(self._views.values())

    def __len__(self) -> int:
        return len(self._views)
