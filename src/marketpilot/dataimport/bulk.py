"""Bulk writes: SQLAlchemy Core statements, compiled once, run as batches of rows.

Statements are built with SQLAlchemy Core (``INSERT ... ON CONFLICT (key) DO UPDATE`` from the
sqlite/postgresql dialects), so the SQL is the dialect's own, and run on the session's
connection, inside the import's one transaction. What differs per backend is how a batch
of rows reaches the database:

- SQLite: the driver's ``executemany`` through ``Connection.exec_driver_sql``, rows as
  tuples. SQLAlchemy's per-row parameter processing is skipped: it cost more than SQLite's
  own insert (1M interactions took ~2.5x longer through ``conn.execute(stmt, dicts)``).
- PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... SELECT ... ON CONFLICT``
  per chunk (`CopyStatement`). psycopg's pipelined ``executemany`` still costs one statement
  execution per row on the server; COPY measured 3x faster on 200k interactions.

Values arrive in the form the bind processors would have produced: timestamps as UTC text
(SQLite's storage format; PostgreSQL parses it, zone included), JSON as text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

Row = tuple[object, ...]


def utc_text(values: pa.Array) -> pa.Array:
    """UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff': SQLAlchemy's SQLite storage format.

    A cast of the zone-less values to string, which pyarrow does an order of magnitude
    faster than `strftime` (no time-zone lookups per value).
    """
    return pc.cast(pc.cast(values, pa.timestamp("us")), pa.string())


class Statement:
    """One compiled statement; rows are tuples in the order of `columns` (the table's order)."""

    def __init__(self, conn: Connection, sql: str, columns: Sequence[str]) -> None:
        self.conn = conn
        self.sql = sql
        self.columns = tuple(columns)

    def run(self, rows: Sequence[Row]) -> None:
        if rows:
            self.conn.exec_driver_sql(self.sql, list(rows))

    def run_columns(self, data: Mapping[str, Sequence[object]]) -> None:
        """Run with values given per column (any order; every statement column present)."""
        self.run(list(zip(*(data[c] for c in self.columns), strict=True)))


class CopyStatement(Statement):
    """PostgreSQL: rows go in with COPY, the protocol's bulk path, instead of one
    INSERT execution per row. A plain insert copies straight into the table; an upsert copies
    into a temporary staging table (dropped at commit) and merges it with one
    ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` built by SQLAlchemy. One such statement
    may not touch a row twice, so a chunk's rows are first reduced to the last row per key,
    which is what row-by-row upserts would have left."""

    def __init__(self, conn: Connection, copy_sql: str, columns: Sequence[str], *,
                 stage: str | None = None, create_sql: str = "", merge_sql: str = "",
                 key: Sequence[int] = ()) -> None:
        super().__init__(conn, copy_sql, columns)
        self.stage = stage
        self.create_sql = create_sql
        self.merge_sql = merge_sql
        self.key = tuple(key)
        self._created = False

    def run(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if self.stage is not None:
            if len(self.key) == 1:
                k = self.key[0]
                rows = list({r[k]: r for r in rows}.values())
            else:
                rows = list({tuple(r[i] for i in self.key): r for r in rows}.values())
            if not self._created:
                cursor.execute(self.create_sql)
                self._created = True
        with cursor.copy(self.sql) as copy:
            for row in rows:
                copy.write_row(row)
        if self.stage is not None:
            cursor.execute(self.merge_sql)
            cursor.execute(f'TRUNCATE "{self.stage}"')


class Bulk:
    """Builds and caches statements for one connection; encodes values for its dialect."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.is_sqlite = conn.dialect.name == "sqlite"
        # Compile with positional placeholders so rows can be plain tuples.
        self._compile_dialect = conn.dialect if self.is_sqlite else type(conn.dialect)(paramstyle="format")  # type: ignore[call-arg]
        self._cache: dict[tuple[object, ...], Statement] = {}

    def _compile(self, stmt: object, columns: Sequence[str]) -> Statement:
        compiled = stmt.compile(dialect=self._compile_dialect)  # type: ignore[attr-defined]
        order = list(compiled.positiontup or [])
        if sorted(order) != sorted(columns):  # a literal in the SQL became a parameter
            raise AssertionError(f"parameters {order} are not the columns {list(columns)}")
        return Statement(self.conn, compiled.string, order)

    def upsert(
        self,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        *,
        keep: Sequence[str] = (),
        set_: dict[str, ColumnElement[object]] | None = None,
    ) -> Statement:
        """INSERT, or on a key conflict UPDATE every non-key column except `keep` (or `set_`)."""
        cache_key = ("upsert", table.name, tuple(columns), tuple(key), tuple(keep), tuple(sorted(set_ or {})))
        if cache_key not in self._cache:
            if self.is_sqlite:
                ins = sqlite.insert(table).values({c: bindparam(c) for c in columns})
                updates = set_ if set_ is not None else {
                    c: ins.excluded[c] for c in columns if c not in key and c not in keep}
                stmt = (ins.on_conflict_do_update(index_elements=list(key), set_=updates) if updates
                        else ins.on_conflict_do_nothing(index_elements=list(key)))
                self._cache[cache_key] = self._compile(stmt, columns)
            else:
                self._cache[cache_key] = self._copy_upsert(table, columns, key, keep, set_)
        return self._cache[cache_key]

    def _copy_upsert(self, table: Table, columns: Sequence[str], key: Sequence[str], keep: Sequence[str],
                     set_: dict[str, ColumnElement[object]] | None) -> CopyStatement:
        ordered = [c.name for c in table.columns if c.name in columns]
        stage = f"mp_import_stage_{len(self._cache)}"
        staged = sa_table(stage, *[sa_column(c) for c in ordered])
        pg_ins = postgresql.insert(table).from_select(ordered, select(*[staged.c[c] for c in ordered]))
        updates = set_ if set_ is not None else {
            c: pg_ins.excluded[c] for c in ordered if c not in key and c not in keep}
        merge = (pg_ins.on_conflict_do_update(index_elements=list(key), set_=updates) if updates
                 else pg_ins.on_conflict_do_nothing(index_elements=list(key)))
        names = ", ".join(f'"{c}"' for c in ordered)  # names from our own table metadata, not input
        create = f'CREATE TEMPORARY TABLE "{stage}" ON COMMIT DROP AS SELECT {names} FROM "{table.name}" WITH NO DATA'  # noqa: S608
        return CopyStatement(
            self.conn, f'COPY "{stage}" ({names}) FROM STDIN', ordered, stage=stage, create_sql=create,
            merge_sql=str(merge.compile(dialect=self.conn.dialect)),
            key=[ordered.index(k) for k in key],
        )

    def excluded(self, table: Table, column: str) -> ColumnElement[object]:
        """The proposed value of `column` inside an ON CONFLICT ... DO UPDATE (for `set_`)."""
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        return dialect_insert(table).excluded[column]

    def insert(self, table: Table, columns: Sequence[str]) -> Statement:
        cache_key = ("insert", table.name, tuple(columns))
        if cache_key not in self._cache:
            if self.is_sqlite:
                stmt = insert(table).values({c: bindparam(c) for c in columns})
                self._cache[cache_key] = self._compile(stmt, columns)
            else:
                ordered = [c.name for c in table.columns if c.name in columns]
                names = ", ".join(f'"{c}"' for c in ordered)
                self._cache[cache_key] = CopyStatement(self.conn, f'COPY "{table.name}" ({names}) FROM STDIN', ordered)
        return self._cache[cache_key]

    def timestamps(self, values: pa.Array) -> list[str | None]:
        """UTC timestamps as the text this dialect stores or casts (vectorised)."""
        text = utc_text(values)
        if not self.is_sqlite:
            text = pc.binary_join_element_wise(text, pa.scalar("+00:00"), "")
        return text.to_pylist()

    def timestamp(self, value: datetime) -> str:
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text if self.is_sqlite else text + "+00:00"


# A load at least this large, and at least as large as the table, rebuilds the table's
# secondary indexes once instead of maintaining them row by row (SQLite only, see below).
DEFER_INDEXES_MIN_ROWS = 100_000


def stored_rows(conn: Connection, table: str) -> int:
    """Rows in a SQLite table, estimated in O(log n) from the largest rowid."""
    return int(conn.exec_driver_sql(f'SELECT coalesce(max(rowid), 0) FROM "{table}"').scalar() or 0)  # noqa: S608


@contextmanager
def sqlite_indexes_deferred(conn: Connection, tables: Sequence[str]) -> Iterator[list[str]]:
    """Drop the secondary indexes of `tables` for the body, create them again after it.

    Inserting a million rows into a table with three secondary indexes costs SQLite about
    twice the CPU of inserting them bare and sorting each index once at the end. Both steps
    run inside the import's transaction, and SQLite's DDL is transactional: readers (WAL)
    keep seeing the indexed table, and a failed import (the body raises, the transaction
    rolls back) restores the indexes with everything else, which is why nothing is
    recreated on an exception. Unique and primary-key indexes stay: upserts need them.
    Not for PostgreSQL, where DROP INDEX locks the table against readers.
    """
    marks = ", ".join("?" for _ in tables)
    found = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
        f"AND sql NOT LIKE 'CREATE UNIQUE%' AND tbl_name IN ({marks})", tuple(tables),
    ).all()
    for name, _ in found:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield [name for name, _ in found]
    for _, sql in found:
        conn.exec_driver_sql(sql)
