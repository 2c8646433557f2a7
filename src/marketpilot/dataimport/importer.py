"""`import_file`: one CSV or Parquet file of one kind into the database, all rows or none.

The whole file is one database transaction: rows are validated and written chunk by chunk
as the file streams (memory stays bounded), and the first problem switches writing off while
reading continues to collect up to `MAX_ERRORS` problems; then the transaction is rolled back
and `ImportFailed` lists them. Re-importing is safe twice over: the file's SHA-256 is recorded
per kind in `import_batches` (identical content is recognised and skipped), and every row is
upserted by its key (an edited re-export updates rows, never duplicates them).

One `DataImported` event announces the file, in the same transaction; see `kinds` for why
rows do not produce the live path's events.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from marketpilot.dataimport.bulk import DEFER_INDEXES_MIN_ROWS, Bulk, sqlite_indexes_deferred, stored_rows
from marketpilot.dataimport.duplicates import KeyTracker
from marketpilot.dataimport.errors import MAX_ERRORS, ErrorLog, ImportFailed, ImportProblem
from marketpilot.dataimport.kinds import WRITERS, Context
from marketpilot.dataimport.reader import Chunk, MalformedFile, ParquetSource, Source, open_source
from marketpilot.dataimport.schemas import SCHEMAS, Schema
from marketpilot.dataimport.validate import check_chunk, storage_problem
from marketpilot.domain.events import DataImported
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.platform.events import outbox

Progress = Callable[[int, int], None]
SQLITE_IMPORT_CACHE_KIB = 256 * 1024  # page cache while importing: index inserts stay in memory


@dataclass(frozen=True)
class ImportReport:
    """What an import did. `rows` counts data rows in the file (blank lines excluded)."""

    kind: str
    file: str
    sha256: str
    rows: int
    batch_id: int
    already_imported: bool
    seconds: float
    duplicates: int = 0  # interactions only: rows repeating an earlier row, stored once
    events: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        if self.already_imported:
            return (f"{self.file} was already imported as {self.kind} batch {self.batch_id} "
                    f"({self.rows:,} rows); nothing changed")
        extra = f", {self.duplicates:,} repeated rows stored once" if self.duplicates else ""
        return (f"imported {self.rows:,} {self.kind} rows from {self.file} as batch {self.batch_id} in "
                f"{self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s{extra}; {self.events:,} events)")


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def import_file(
    db: Database,
    kind: str,
    path: str | Path,
    *,
    source: str,
    progress: Progress | None = None,
    ignore_extra_columns: bool = False,
) -> ImportReport:
    """Import `path` (.csv, .csv.gz or .parquet) as `kind`; see docs/data-import.md.

    `source` is the CloudEvents source of the events written. `progress(done, total)` is
    called after every chunk with rows done and the expected total (exact for Parquet,
    extrapolated from bytes read for CSV). Columns not in the schema are an error unless
    `ignore_extra_columns`. Raises `ImportFailed` (nothing written) listing the problems.
    """
    path = Path(path)
    started = time.perf_counter()
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise ImportFailed([ImportProblem(path.name, None, None,
                                          f"unknown kind {kind!r}; expected one of {', '.join(SCHEMAS)}")])
    if not path.is_file():
        raise ImportFailed([ImportProblem(path.name, None, None, f"no such file: {path}")])
    digest = file_sha256(path)
    try:
        reader = open_source(path)
    except MalformedFile as exc:
        log = ErrorLog(path.name, "line")
        for position, message in exc.problems:
            log.add(position, None, message)
        raise log.failure() from None
    with reader:
        log = ErrorLog(path.name, reader.unit)
        columns = _check_header(schema, reader, log, ignore_extra_columns)
        if log:
            raise log.failure()
        try:
            return _import(db, schema, reader, columns, digest, log, source, progress, started)
        except IntegrityError:
            # A concurrent import of the same content committed first (PostgreSQL).
            done = _already_imported(db, kind, digest)
            if done is None:
                raise
            return _report(schema.kind, path, digest, done, started)


def _check_header(schema: Schema, reader: Source, log: ErrorLog, ignore_extra: bool) -> list[str]:
    """Columns to read. Problems with the header are reported before any row is read."""
    header_pos = 1 if reader.unit == "line" else None
    present = set(reader.header)
    for name in schema.required:
        if name not in present:
            log.add(header_pos, None, f"required column {name!r} is missing "
                                      f"(the file has: {', '.join(reader.header) or 'no columns'})")
    if not ignore_extra:
        for name in reader.header:
            if name not in schema.names:
                log.add(header_pos, None, f"unknown column {name!r}: {schema.kind} files may have "
                                          f"{', '.join(schema.names)}")
    if isinstance(reader, ParquetSource):
        for field in reader.arrow_schema:
            if field.name in schema.names:
                problem = storage_problem(schema.column(field.name), field.type)
                if problem:
                    log.add(None, field.name, problem)
    return [name for name in schema.names if name in present]


def _already_imported(db: Database, kind: str, digest: str) -> tuple[int, int] | None:
    with db.session() as s:
        row = s.execute(select(t.ImportBatch.id, t.ImportBatch.rows)
                        .where(t.ImportBatch.kind == kind, t.ImportBatch.sha256 == digest)).first()
    return (int(row[0]), int(row[1])) if row else None


def _report(kind: str, path: Path, digest: str, batch: tuple[int, int], started: float) -> ImportReport:
    return ImportReport(kind=kind, file=path.name, sha256=digest, rows=batch[1], batch_id=batch[0],
                        already_imported=True, seconds=time.perf_counter() - started)


@contextmanager
def _bulk_session_settings(conn: Connection) -> Iterator[None]:
    """A large SQLite page cache for the import's connection, restored afterwards."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        with suppress(DBAPIError):  # never hide the import's own exception behind this one
            conn.exec_driver_sql(f"PRAGMA cache_size={int(before or -2000)}")


class _Stream:
    """The rows of one file through validation, the kind's checks and its writer, chunk by chunk.

    Writing stops at the first problem (the transaction will be rolled back anyway) while
    reading goes on until the error log is full, so one run reports as much as it can.
    """

    def __init__(self, ctx: Context, schema: Schema, reader: Source, log: ErrorLog, progress: Progress | None) -> None:
        self.ctx = ctx
        self.schema = schema
        self.reader = reader
        self.log = log
        self.progress = progress
        self.writer = WRITERS[schema.kind](ctx)
        self.keys = KeyTracker()
        self.indexes = ExitStack()
        self.rows = 0
        self.duplicates = 0

    def run(self, columns: list[str]) -> None:
        try:
            for chunk in self.reader.chunks(columns):
                if self.rows == 0 and self._defer_indexes(self.reader.total_estimate(len(chunk))):
                    self.indexes.enter_context(sqlite_indexes_deferred(self.ctx.conn, self.writer.tables))
                self.rows += len(chunk)
                self._chunk(chunk)
                if self.progress is not None:
                    self.progress(self.rows, self.reader.total_estimate(self.rows))
                if self.log.full:
                    self.log.truncated = True
                    break
        except MalformedFile as exc:
            for position, message in exc.problems:
                self.log.add(position, None, message)
        self._repeated_keys()
        if self.log:
            raise self.log.failure()  # the transaction rolls back, dropped indexes included
        self.writer.finish()
        self.indexes.close()

    def _chunk(self, chunk: Chunk) -> None:
        checked = check_chunk(self.schema, chunk, self.log.remaining)
        for issue in checked.issues:
            self.log.add(int(chunk.positions[issue.index]), issue.column, issue.message)
        valid = self.writer.rows(checked.valid())
        if not len(valid):
            return
        named = self.writer.duplicates == "error"
        self.keys.add(self.writer.key_hashes(valid), valid.chunk.positions if named else None)
        for issue in self.writer.check(valid):
            self.log.add(int(valid.chunk.positions[issue.index]), issue.column, issue.message)
        if not self.log:
            self.writer.write(valid)

    def _repeated_keys(self) -> None:
        if self.writer.duplicates == "collapse":
            self.duplicates = self.keys.count()
            return
        if self.log.full:
            return
        key = ", ".join(self.schema.key)
        for position, first in self.keys.repeats():
            self.log.add(position, None, f"repeats the key ({key}) of {self.reader.unit} {first}: "
                                         "each key may appear once per file")

    def _defer_indexes(self, expected_rows: int) -> bool:
        """A large load into a comparatively small SQLite table: rebuild its indexes at the end."""
        ctx, writer = self.ctx, self.writer
        if not ctx.bulk.is_sqlite or not writer.defer_indexes or expected_rows < DEFER_INDEXES_MIN_ROWS:
            return False
        return expected_rows >= stored_rows(ctx.conn, writer.tables[0])


def _import(
    db: Database,
    schema: Schema,
    reader: Source,
    columns: list[str],
    digest: str,
    log: ErrorLog,
    source: str,
    progress: Progress | None,
    started: float,
) -> ImportReport:
    path = reader.path
    with db.session() as session:
        conn = session.connection()
        prior = conn.execute(select(t.ImportBatch.id, t.ImportBatch.rows)
                             .where(t.ImportBatch.kind == schema.kind, t.ImportBatch.sha256 == digest)).first()
        if prior is not None:
            return _report(schema.kind, path, digest, (int(prior[0]), int(prior[1])), started)
        with _bulk_session_settings(conn):
            now: datetime = utcnow()
            ctx = Context(session, conn, Bulk(conn), source, now, reader.unit)
            stream = _Stream(ctx, schema, reader, log, progress)
            stream.run(columns)
            batch_id = int(conn.execute(
                insert(t.ImportBatch)
                .values(kind=schema.kind, sha256=digest, filename=path.name[:500], rows=stream.rows, imported_at=now)
                .returning(t.ImportBatch.id)
            ).scalar_one())
            outbox.append(session, DataImported(batch_id=str(batch_id), kind=schema.kind, rows=stream.rows,
                                                filename=path.name), source, time=now)
    if progress is not None:
        progress(stream.rows, stream.rows)
    return ImportReport(kind=schema.kind, file=path.name, sha256=digest, rows=stream.rows, batch_id=batch_id,
                        already_imported=False, seconds=time.perf_counter() - started,
                        duplicates=stream.duplicates, events=ctx.events + 1)


__all__ = ["MAX_ERRORS", "ImportFailed", "ImportReport", "import_file"]
