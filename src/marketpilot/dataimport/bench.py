"""Throughput of `import_file` on a synthetic interactions file.

    python -m marketpilot.dataimport.bench --rows 1000000 [--db URL] [--format csv|parquet]

Without --db a fresh SQLite file in a temporary directory is used. A 1,000-row file is
imported first so that one-time costs (module imports, pyarrow kernels, migrations) are not
counted. Prints one JSON object with the import's rows/s (wall clock and process CPU), and
two anchors measured in the same run: parsing and validating alone (no database), and the
database alone (the same rows, already converted, written with the same statement into an
empty copy of the table). `import_vs_database_alone` is the import's time over the latter: the
price of reading, checking and converting on top of what the database costs anyway.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from marketpilot.dataimport.importer import import_file
from marketpilot.dataimport.reader import open_source
from marketpilot.dataimport.schemas import SCHEMAS
from marketpilot.dataimport.validate import check_chunk
from marketpilot.platform.db import Database

EVENTS = np.array(["view", "click", "add_to_cart", "purchase", "rating"])


def synthetic_interactions(rows: int, seed: int = 0, start: int = 1_700_000_000) -> pa.Table:
    """Interactions of 100k users over 50k listings, one per second, half with a value."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "user_id": pa.array(np.char.add("u", rng.integers(0, 100_000, rows).astype(str))),
        "listing_id": pa.array(np.char.add("l", rng.integers(0, 50_000, rows).astype(str))),
        "event": pa.array(EVENTS[rng.integers(0, len(EVENTS), rows)]),
        "value": pa.array(np.where(rng.random(rows) < 0.5, "", "1")),
        "timestamp": pa.array((start + np.arange(rows)).astype(str)),
    })


def write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pcsv.write_csv(table, path)
    return path


def parse_only(path: Path) -> float:
    started = time.perf_counter()
    with open_source(path) as src:
        for chunk in src.chunks(src.header):
            check_chunk(SCHEMAS["interactions"], chunk, 100)
    return time.perf_counter() - started


def database_alone(db: Database, url: str) -> float:
    """Seconds to write the imported interactions again, as driver-ready tuples, into an empty
    interactions table of a second database (same statement, same index handling)."""
    from sqlalchemy import text

    from marketpilot.dataimport.bulk import Bulk, sqlite_indexes_deferred
    from marketpilot.dataimport.kinds import INTERACTIONS

    with db.engine.connect() as conn:
        data = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM interactions")]
        columns = list(conn.execute(text("SELECT * FROM interactions LIMIT 0")).keys())
    target = Database(url)
    target.migrate()
    try:
        with target.session() as session:
            conn = session.connection()
            conn.exec_driver_sql("DELETE FROM interactions")
            bulk = Bulk(conn)
            stmt = bulk.upsert(INTERACTIONS, columns, ["id"])
            order = [columns.index(c) for c in stmt.columns]
            rows = [tuple(r[i] for i in order) for r in data]
            started = time.perf_counter()
            if bulk.is_sqlite:
                conn.exec_driver_sql(f"PRAGMA cache_size=-{256 * 1024}")
                with sqlite_indexes_deferred(conn, ["interactions"]):
                    for i in range(0, len(rows), 20_000):
                        stmt.run(rows[i : i + 20_000])
            else:
                for i in range(0, len(rows), 20_000):
                    stmt.run(rows[i : i + 20_000])
            seconds = time.perf_counter() - started
        return seconds
    finally:
        target.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--anchor-db", default=None,
                    help="empty database for the database-alone anchor (default: a second SQLite file; "
                         "give a second PostgreSQL database when --db is PostgreSQL)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        anchor_url = args.anchor_db or f"sqlite:///{Path(tmp) / 'anchor.db'}"
        db = Database(url)
        db.migrate()
        suffix = "." + args.format
        warm = write(synthetic_interactions(1_000, seed=1, start=1_600_000_000), Path(tmp) / f"warm{suffix}")
        big = write(synthetic_interactions(args.rows), Path(tmp) / f"interactions{suffix}")
        import_file(db, "interactions", warm, source="/bench")
        parse = parse_only(big)
        cpu = time.process_time()
        report = import_file(db, "interactions", big, source="/bench")
        cpu = time.process_time() - cpu
        alone = database_alone(db, anchor_url)
        db.dispose()
    print(json.dumps({
        "dialect": url.split(":", 1)[0], "format": args.format, "rows": report.rows,
        "seconds": round(report.seconds, 2), "rows_per_second": round(report.rows_per_second),
        "process_cpu_seconds": round(cpu, 2), "rows_per_cpu_second": round(report.rows / cpu),
        "parse_validate_seconds": round(parse, 2), "parse_validate_rows_per_second": round(report.rows / parse),
        "database_alone_seconds": round(alone, 2), "import_vs_database_alone": round(report.seconds / alone, 2),
    }))


if __name__ == "__main__":
    main()
