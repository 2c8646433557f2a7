"""Point-in-time correct training sets: each label sees features as they were when it happened.

A training set starts from a *spine*: one row per example with the entity keys, the label
time and the label. For every feature table (one row per entity and event time) DuckDB's
``ASOF LEFT JOIN`` picks, per spine row, the latest feature row at or before the label time:

    spine s ASOF LEFT JOIN features f ON s.user_id = f.user_id AND s.label_time >= f.event_time

so a value written after the label (the future, which the model will not have at serving
time) can never be joined; that is the leakage the training set must not contain. An
optional ``ttl`` also nulls a value older than the TTL at the label time, mirroring an online
read that would have found nothing fresh. Rows come back in spine order, one per spine row.

Times may be timestamps or int64 epoch milliseconds on either side; both are compared as
epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import duckdb
import pyarrow as pa
from sqlalchemy import MetaData, Table, select

from marketpilot.platform.db import Database
from marketpilot.platform.features.views import FeatureView, FileSource, TableSource

if TYPE_CHECKING:
    import pandas as pd

# A pandas DataFrame is accepted too (DuckDB reads it in place); pandas is not imported here,
# so processes that only serve online reads never load it.
FrameLike: TypeAlias = "pa.Table | pd.DataFrame | Path | str"


@dataclass(frozen=True)
class FeatureTable:
    """The history of one view to join: ``data`` (Arrow, pandas, or a Parquet path/glob; default
    the view's ``FileSource``/``TableSource``), the columns holding its entity and event time
    (default from the source, else ``view.entity`` and ``event_time``), the features to take
    (default all) and an optional ``ttl``."""

    view: FeatureView
    data: FrameLike | None = None
    features: Sequence[str] | None = None
    entity_column: str | None = None
    timestamp_column: str | None = None
    ttl: timedelta | None = None

    def columns(self) -> tuple[str, str]:
        source = self.view.source
        entity = self.entity_column or (
            source.entity_column if isinstance(source, FileSource | TableSource) else self.view.entity
        )
        ts = self.timestamp_column or (
            source.timestamp_column if isinstance(source, FileSource | TableSource) else "event_time"
        )
        return entity, ts

    def feature_names(self) -> list[str]:
        if self.features is None:
            return [f.name for f in self.view.features]
        for name in self.features:
            self.view.feature(name)
        return list(self.features)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _epoch_ms(con: duckdb.DuckDBPyConnection, relation: str, column: str) -> str:
    """SQL turning `column` of `relation` into epoch ms, by its type."""
    types = {row[0]: row[1] for row in con.sql(f"DESCRIBE {relation}").fetchall()}  # noqa: S608 - our own name
    if column not in types:
        raise ValueError(f"{relation} has no time column {column!r} (columns: {', '.join(types)})")
    kind = types[column].upper()
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return f"epoch_ms({_quote(column)}::TIMESTAMPTZ)" if "TIME ZONE" in kind else f"epoch_ms({_quote(column)})"
    if kind in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT"):
        return f"{_quote(column)}::BIGINT"
    raise ValueError(f"time column {column!r} of {relation} is {kind}; expected a timestamp or epoch ms")


def export_table(db: Database, name: str) -> pa.Table:
    """A whole database table as Arrow (the route for a ``TableSource``)."""
    table = Table(name, MetaData(), autoload_with=db.engine)
    with db.engine.connect() as conn:
        rows = conn.execute(select(table)).all()
    return pa.Table.from_pylist([dict(r._mapping) for r in rows]) if rows else pa.table(
        {c.name: pa.array([], pa.string()) for c in table.columns}
    )


class TrainingSetBuilder:
    """Joins feature tables onto a spine, point in time. ``db`` resolves ``TableSource`` views."""

    def __init__(self, db: Database | None = None) -> None:
        self.db = db

    def _register(self, con: duckdb.DuckDBPyConnection, name: str, data: FrameLike) -> None:
        if isinstance(data, Path | str):
            con.read_parquet(str(data)).create_view(name)
        else:
            con.register(name, data)

    def _data(self, table: FeatureTable) -> FrameLike:
        if table.data is not None:
            return table.data
        source = table.view.source
        if isinstance(source, FileSource):
            return source.path
        if isinstance(source, TableSource):
            if self.db is None:
                raise ValueError(f"view {table.view.name!r} reads table {source.table!r}: pass db= to the builder")
            return export_table(self.db, source.table)
        raise ValueError(f"view {table.view.name!r} has no offline source: give FeatureTable(data=...)")

    def build(
        self,
        spine: FrameLike,
        tables: Sequence[FeatureTable | FeatureView],
        *,
        time_column: str = "label_time",
        full_names: bool = False,
        with_event_times: bool = False,
    ) -> pa.Table:
        """The spine's columns plus each table's features as of each row's `time_column`.

        Feature columns are named like the feature, or ``view__feature`` with
        ``full_names``; ``with_event_times`` adds ``view__event_time`` (epoch ms of the joined
        row, null when none was joined), which makes a training set auditable.
        """
        specs = [t if isinstance(t, FeatureTable) else FeatureTable(t) for t in tables]
        con = duckdb.connect()
        try:
            self._register(con, "spine_raw", spine)
            spine_ts = _epoch_ms(con, "spine_raw", time_column)
            con.execute(
                f"CREATE TEMP TABLE spine AS SELECT *, {spine_ts} AS __ts, row_number() OVER () AS __row "  # noqa: S608
                "FROM spine_raw"
            )
            spine_cols = {row[0] for row in con.sql("DESCRIBE spine_raw").fetchall()}
            selects: list[str] = []
            joins: list[str] = []
            taken: set[str] = set(spine_cols)
            for i, spec in enumerate(specs):
                entity, ts = spec.columns()
                key = spec.view.entity
                if key not in spine_cols:
                    raise ValueError(f"the spine has no column {key!r} to join view {spec.view.name!r}")
                raw, rel = f"f{i}_raw", f"f{i}"
                self._register(con, raw, self._data(spec))
                names = spec.feature_names()
                cols = ", ".join(_quote(n) for n in names)
                con.execute(
                    f"CREATE TEMP VIEW {rel} AS SELECT {_quote(entity)} AS __key, "  # noqa: S608
                    f"{_epoch_ms(con, raw, ts)} AS __ts, {cols} FROM {raw}"
                )
                joins.append(f"ASOF LEFT JOIN {rel} ON s.{_quote(key)} = {rel}.__key AND s.__ts >= {rel}.__ts")
                fresh = (
                    "TRUE"
                    if spec.ttl is None
                    else f"s.__ts - {rel}.__ts <= {int(spec.ttl / timedelta(milliseconds=1))}"
                )
                for name in names:
                    out = f"{spec.view.name}__{name}" if full_names else name
                    if out in taken:
                        raise ValueError(f"column {out!r} would appear twice; use full_names=True")
                    taken.add(out)
                    selects.append(f"CASE WHEN {fresh} THEN {rel}.{_quote(name)} END AS {_quote(out)}")
                if with_event_times:
                    selects.append(
                        f"CASE WHEN {fresh} THEN {rel}.__ts END AS {_quote(spec.view.name + '__event_time')}"
                    )
            ordered = ", ".join(f"s.{_quote(c)}" for c in self._spine_order(con))
            sql = (
                f"SELECT {', '.join([ordered, *selects])} FROM spine s {' '.join(joins)} ORDER BY s.__row"  # noqa: S608
            )
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()

    @staticmethod
    def _spine_order(con: duckdb.DuckDBPyConnection) -> list[str]:
        return [row[0] for row in con.sql("DESCRIBE spine_raw").fetchall()]


def build_training_set(
    spine: FrameLike,
    tables: Sequence[FeatureTable | FeatureView],
    *,
    time_column: str = "label_time",
    full_names: bool = False,
    with_event_times: bool = False,
    db: Database | None = None,
) -> pa.Table:
    """Shorthand for ``TrainingSetBuilder(db).build(...)``."""
    return TrainingSetBuilder(db).build(
        spine, tables, time_column=time_column, full_names=full_names, with_event_times=with_event_times
    )
