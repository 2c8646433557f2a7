"""Streaming readers: a CSV or Parquet file as a sequence of column chunks.

A file is never parsed as a whole: pyarrow hands out record batches of about a megabyte of
CSV (or `PARQUET_BATCH_ROWS` Parquet rows), so a ten-million-row interactions file needs
memory for one chunk at a time. Every chunk carries, per row, the position a person would
look up: the physical CSV line where the row starts (header = line 1; a quoted cell that
spans lines pushes later rows down, as in an editor) or the Parquet row index.

CSV cells are read as text and typed by `validate`, so a bad cell becomes a message about
that cell instead of pyarrow's type-inference error about the whole column. Structural
damage (a row with the wrong number of cells, bytes that are not UTF-8) stops pyarrow; the
reader then rescans the file with the standard library, which is slow but exact, to name
the lines.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

CSV_BLOCK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 32_768
SAMPLE_BYTES = 1 << 20  # read once to estimate a CSV file's row count


class MalformedFile(Exception):
    """The file cannot be read as a table; `problems` are (position or None, message)."""

    def __init__(self, problems: list[tuple[int | None, str]]) -> None:
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems


@dataclass
class Chunk:
    """Rows of a file as pyarrow arrays by column name, with each row's line or row index."""

    columns: dict[str, pa.Array]
    positions: np.ndarray  # int64, one per row

    def __len__(self) -> int:
        return len(self.positions)

    def take(self, indices: np.ndarray) -> Chunk:
        idx = pa.array(indices, type=pa.int64())
        return Chunk({k: v.take(idx) for k, v in self.columns.items()}, self.positions[indices])


def file_format(path: Path) -> str | None:
    """'csv', 'csv.gz' or 'parquet' from the file name; None for anything else."""
    name = path.name.lower()
    for suffix in ("csv.gz", "csv", "parquet"):
        if name.endswith("." + suffix):
            return suffix
    return None


class Source(ABC):
    """An open import file: its header, then its rows chunk by chunk."""

    unit: str  # how a position is named in messages: "line" or "row"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: list[str] = []

    @abstractmethod
    def chunks(self, columns: list[str]) -> Iterator[Chunk]:
        """Chunks holding `columns` (a subset of the header)."""

    @abstractmethod
    def total_estimate(self, done: int) -> int:
        """Rows in the file: exact for Parquet, extrapolated from bytes read for CSV."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: Path) -> Source:
    fmt = file_format(path)
    if fmt == "parquet":
        return ParquetSource(path)
    if fmt in ("csv", "csv.gz"):
        return CsvSource(path, gzipped=fmt == "csv.gz")
    raise MalformedFile([(None, "unsupported file type: expected a name ending in .csv, .csv.gz or .parquet")])


class CsvSource(Source):
    """Comma-separated, double-quoted, UTF-8 (a byte-order mark is allowed), first line = header."""

    unit = "line"

    def __init__(self, path: Path, *, gzipped: bool) -> None:
        super().__init__(path)
        self.gzipped = gzipped
        self.size = self._content_size()
        self._raw: pa.NativeFile | None = None
        self.header = self._read_header()
        self._rows_estimate = self._estimate_rows()

    def _content_size(self) -> int:
        """Bytes of CSV text: the file size, or for gzip the size the trailer records (mod 2^32)."""
        size = os.path.getsize(self.path)
        if not self.gzipped or size < 18:
            return max(size, 1)
        with open(self.path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            plain = int.from_bytes(fh.read(4), "little")
        while plain < size:  # the trailer wrapped around (text over 4 GiB)
            plain += 2**32
        return plain

    def _binary(self) -> IO[bytes]:
        return gzip.open(self.path, "rb") if self.gzipped else open(self.path, "rb")  # type: ignore[return-value]  # noqa: SIM115

    def _text(self) -> IO[str]:
        return io.TextIOWrapper(self._binary(), encoding="utf-8-sig", newline="")

    def _read_header(self) -> list[str]:
        try:
            with self._binary() as fh:
                first = fh.readline()
        except (OSError, EOFError) as exc:  # e.g. a .csv.gz that is not gzip
            raise MalformedFile([(None, f"cannot be read: {exc}")]) from None
        try:
            line = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise MalformedFile([(1, "the header is not UTF-8 text")]) from None
        row = next(csv.reader([line]), None)
        if not row:
            raise MalformedFile([(None, "is empty: expected a header line naming the columns")])
        names = [name.strip() for name in row]
        problems: list[tuple[int | None, str]] = []
        for i, name in enumerate(names, start=1):
            if not name:
                problems.append((1, f"header cell {i} is empty: every column needs a name"))
        dupes = sorted({n for n in names if n and names.count(n) > 1})
        if dupes:
            problems.append((1, f"header names {', '.join(repr(d) for d in dupes)} more than once"))
        if problems:
            raise MalformedFile(problems)
        return names

    def chunks(self, columns: list[str]) -> Iterator[Chunk]:
        self._raw = pa.OSFile(str(self.path))
        stream = pa.CompressedInputStream(self._raw, "gzip") if self.gzipped else self._raw
        try:
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(column_names=self.header, skip_rows=1, block_size=CSV_BLOCK_BYTES),
                # Quoted cells may hold line breaks (descriptions); blank lines arrive as empty rows
                # so that line numbers stay exact, and are dropped below.
                parse_options=pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
                convert_options=pcsv.ConvertOptions(
                    column_types={name: pa.string() for name in self.header},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:  # the first block is parsed on opening
            raise MalformedFile(self._locate(str(exc))) from None
        next_line = 2
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise MalformedFile(self._locate(str(exc))) from None
            if batch.num_rows == 0:
                continue
            # Lines each row spans: 1 + the line breaks inside its quoted cells.
            spans = np.ones(batch.num_rows, dtype=np.int64)
            blank = np.ones(batch.num_rows, dtype=bool)
            for col in batch.columns:
                spans += pc.count_substring(col, "\n").to_numpy(zero_copy_only=False)
                blank &= pc.equal(pc.binary_length(col), 0).to_numpy(zero_copy_only=False)
            starts = next_line + np.cumsum(spans) - spans
            next_line += int(spans.sum())
            chunk = Chunk({name: batch.column(name) for name in columns}, starts)
            if blank.any():
                chunk = chunk.take(np.flatnonzero(~blank))
            if len(chunk):
                yield chunk

    def _estimate_rows(self) -> int:
        """Data rows in the file, from the line density of its first `SAMPLE_BYTES`.

        pyarrow reads far ahead of the rows it has handed out, so the position in the file
        says little; a sample read once up front gives a stable figure for progress bars.
        """
        with self._binary() as fh:
            sample = fh.read(SAMPLE_BYTES)
        lines = sample.count(b"\n") + (0 if sample.endswith(b"\n") else 1)
        if len(sample) < SAMPLE_BYTES:  # the whole file
            return max(lines - 1, 0)
        return max(round((lines - 1) * self.size / len(sample)), 0)

    def total_estimate(self, done: int) -> int:
        return max(done, self._rows_estimate)

    def close(self) -> None:
        if self._raw is not None and not self._raw.closed:
            self._raw.close()

    def _locate(self, arrow_message: str, limit: int = 100) -> list[tuple[int | None, str]]:
        """Find the lines pyarrow choked on, with the standard library (exact, slow, rare)."""
        problems: list[tuple[int | None, str]] = []
        with self._binary() as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problems.append((number, f"is not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"))
                    if len(problems) >= limit:
                        return problems
        if problems:
            return problems
        with self._text() as fh:
            reader = csv.reader(fh)
            previous_end = 0
            for record in reader:
                start, previous_end = previous_end + 1, reader.line_num
                if start == 1 or not record or len(record) == len(self.header):
                    continue
                problems.append(
                    (start, f"has {len(record)} cells but the header has {len(self.header)} columns")
                )
                if len(problems) >= limit:
                    break
        return problems or [(None, f"cannot be parsed as CSV: {arrow_message}")]


class ParquetSource(Source):
    unit = "row"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise MalformedFile([(None, f"is not a readable Parquet file: {exc}")]) from None
        self.header = list(self.file.schema_arrow.names)
        dupes = sorted({n for n in self.header if self.header.count(n) > 1})
        if dupes:
            raise MalformedFile([(None, f"columns {', '.join(repr(d) for d in dupes)} appear more than once")])

    @property
    def arrow_schema(self) -> pa.Schema:
        return self.file.schema_arrow

    def chunks(self, columns: list[str]) -> Iterator[Chunk]:
        offset = 0
        for batch in self.file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            n = batch.num_rows
            if n:
                yield Chunk({name: batch.column(name) for name in columns}, np.arange(offset, offset + n))
            offset += n

    def total_estimate(self, done: int) -> int:
        return int(self.file.metadata.num_rows)

    def close(self) -> None:
        self.file.close()
