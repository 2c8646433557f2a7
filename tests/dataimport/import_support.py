"""Helpers for import tests: files written to a temporary directory, database snapshots."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select, text

from marketpilot.dataimport import ImportReport, import_file
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import Base

SOURCE = "/test-import"

# Every table an import may touch, with the columns to order its rows by.
TABLES = {
    "sellers": "id", "listings": "id", "inventory": "listing_id", "users": "id", "interactions": "id",
    "orders": "id", "order_lines": "order_id, listing_id", "transactions": "id", "sales": "id",
    "shipments": "id", "import_batches": "id", "outbox": "position",
}

SELLERS_CSV = """\
seller_id,name,country,created_at
s1,Shop one,DE,2024-01-01T00:00:00Z
s2,Shop two,,
"""

LISTINGS_CSV = """\
listing_id,seller_id,title,description,category_path,attributes,price_minor,currency,status,quantity
l1,s1,Red shoe,"Leather,
hand-made",fashion/women/shoes,"{""brand"": ""acme""}",2599,EUR,active,5
l2,s2,Blue hat,,fashion/hats,,1000,EUR,,
l3,s1,Green sock,,fashion/socks,,500,EUR,draft,0
"""


class Files:
    """Writes test files; `csv` takes the text as it should appear on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def csv(self, name: str, body: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(body))
        return path

    def parquet(self, name: str, table: pa.Table | dict[str, Any]) -> Path:
        path = self.root / name
        pq.write_table(table if isinstance(table, pa.Table) else pa.table(table), path)
        return path


def run_import(db: Database, kind: str, path: Path, **kwargs: Any) -> ImportReport:
    return import_file(db, kind, path, source=SOURCE, **kwargs)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table an import touches: equal snapshots mean nothing changed."""
    with db.session() as s:
        return {
            table: [tuple(r) for r in s.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))]  # noqa: S608
            for table, order in TABLES.items()
        }


def rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    with db.session() as s:
        return [tuple(r) for r in s.execute(text(sql))]


def outbox_types(db: Database) -> list[str]:
    return [r[0] for r in rows(db, "SELECT type FROM outbox ORDER BY position")]


def load_catalogue(db: Database, files: Files) -> None:
    """Imports sellers s1, s2 and listings l1-l3 (what orders and sales refer to)."""
    run_import(db, "sellers", files.csv("sellers.csv", SELLERS_CSV))
    run_import(db, "listings", files.csv("listings.csv", LISTINGS_CSV))


def table_rows(db: Database, table: str, columns: str, order: str | None = None) -> list[tuple[Any, ...]]:
    """Selected columns of a table through SQLAlchemy Core, so timestamps come back as aware
    datetimes and JSON as dicts on both backends."""
    tbl = Base.metadata.tables[table]
    cols = [tbl.c[c.strip()] for c in columns.split(",")]
    q = select(*cols).order_by(*(tbl.c[c.strip()] for c in (order or columns.split(",")[0]).split(",")))
    with db.session() as s:
        return [tuple(_aware(v) for v in r) for r in s.execute(q)]


def _aware(value: Any) -> Any:
    # SQLite hands Core selects naive datetimes (the stored text has no zone); they are UTC.
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def write_table(files: Files, fmt: str, name: str, columns: dict[str, list[Any]],
                types: dict[str, pa.DataType] | None = None) -> Path:
    """The same rows as CSV (cells formatted as a person would write them) or as Parquet
    (native types from `types`, strings otherwise)."""
    if fmt == "parquet":
        types = types or {}
        return files.parquet(f"{name}.parquet", pa.table(
            {k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()}))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in zip(*columns.values(), strict=True):
        w.writerow([_cell(v) for v in row])
    return files.csv(f"{name}.csv", buf.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)
