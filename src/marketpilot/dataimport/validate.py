"""Typing and checking the cells of a chunk against the import schema, column at a time.

Checks run as pyarrow compute kernels over a whole column, so the cost per row is a few
vectorised passes, not Python per cell; only failing cells are turned into messages. Each
check is written once as a mask plus the sentence that explains it, so the fast path and
the message cannot disagree. The few conversions pyarrow cannot do in bulk (JSON, a chunk
mixing timestamp styles) fall back to Python for that column of that chunk only.

Typed results: STR, CURRENCY and JSON as strings (JSON re-serialised compactly), INT as
int64, FLOAT as float64, TIMESTAMP as ``timestamp[us, UTC]``. An empty cell is null (or
the column's default); a bad cell is null and its row is marked not ok.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpilot.dataimport.reader import Chunk
from marketpilot.dataimport.schemas import Column, ColumnType, Schema
from marketpilot.domain.entities import CURRENCY_EXPONENT, ID_PATTERN

TIMESTAMP = pa.timestamp("us", tz="UTC")
TYPED: dict[ColumnType, pa.DataType] = {
    ColumnType.STR: pa.string(),
    ColumnType.CURRENCY: pa.string(),
    ColumnType.JSON: pa.string(),
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.TIMESTAMP: TIMESTAMP,
}
CURRENCIES = tuple(sorted(CURRENCY_EXPONENT))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Timestamps outside these years are almost always milliseconds read as seconds, or a typo.
YEAR_MIN, YEAR_MAX = 1900, 2099
TS_MIN_US = (datetime(YEAR_MIN, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
TS_MAX_US = (datetime(YEAR_MAX + 1, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)

INT_RE = r"^[+-]?[0-9]+(\.0*)?$"  # "3.0" is accepted: pandas writes integer columns with gaps that way
FLOAT_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
UNIX_RE = r"^[+-]?[0-9]+(\.[0-9]+)?$"
ID_RULE = "1-64 letters, digits, '_', '-', '.' or ':', starting with a letter or digit"


@dataclass(frozen=True)
class Issue:
    """A problem with row `index` of a chunk (the importer adds file and line)."""

    index: int
    column: str | None
    message: str


@dataclass
class Checked:
    """A validated chunk: typed columns, which rows passed, and what was wrong with the rest."""

    columns: dict[str, pa.Array]
    positions: np.ndarray
    ok: np.ndarray
    issues: list[Issue]

    def valid(self) -> Chunk:
        """The rows that passed every check (what the writer gets)."""
        chunk = Chunk(self.columns, self.positions)
        return chunk if self.ok.all() else chunk.take(np.flatnonzero(self.ok))


def show(value: Any, width: int = 60) -> str:
    """A cell as quoted in a message: repr, shortened so one bad cell cannot flood the report."""
    text = repr(value)
    if len(text) <= width:
        return text
    return text[: width - 4] + "...'" if text.startswith("'") else text[: width - 3] + "..."


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _number(value: float | None) -> str:
    return "" if value is None else str(int(value)) if float(value).is_integer() else str(value)


def _base_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


ALLOWED_STORAGE: dict[ColumnType, tuple[str, Callable[[pa.DataType], bool]]] = {
    ColumnType.STR: ("text or integers", pa.types.is_integer),
    ColumnType.CURRENCY: ("text", lambda t: False),
    ColumnType.JSON: ("text holding a JSON object", lambda t: False),
    ColumnType.INT: ("integers (or text)", lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)),
    ColumnType.FLOAT: ("numbers (or text)", lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)),
    ColumnType.TIMESTAMP: (
        "timestamps, dates, Unix seconds or ISO 8601 text",
        lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_integer(t) or pa.types.is_floating(t),
    ),
}


def storage_problem(column: Column, arrow_type: pa.DataType) -> str | None:
    """Why a Parquet column's type cannot hold `column`'s values, or None if it can."""
    t = _base_type(arrow_type)
    if _is_text(t) or pa.types.is_null(t):
        return None
    allowed, accepts = ALLOWED_STORAGE[column.type]
    if accepts(t):
        return None
    return f"is stored as Parquet type {t}; {column.type.value} columns take {allowed}"


class _ColumnCheck:
    """Checks one column of one chunk and remembers the first problem of each cell."""

    def __init__(self, column: Column, raw: pa.Array, limit: int) -> None:
        self.column = column
        t = raw.type
        if pa.types.is_dictionary(t):
            raw = pc.cast(raw, t.value_type)
        if pa.types.is_large_string(raw.type):
            raw = pc.cast(raw, pa.string())
        self.raw = raw
        self.limit = limit
        self.bad = np.zeros(len(raw), dtype=bool)
        self.issues: list[Issue] = []

    def flag(self, mask: np.ndarray, explain: Callable[[int], str]) -> None:
        fresh = mask & ~self.bad
        room = self.limit - len(self.issues)
        if room > 0:
            for i in np.flatnonzero(fresh)[:room]:
                self.issues.append(Issue(int(i), self.column.name, explain(int(i))))
        self.bad |= mask

    def cell(self, i: int) -> Any:
        return self.raw[i].as_py()

    def run(self) -> pa.Array:
        col = self.column
        raw = self.raw
        text = _is_text(raw.type)
        if pa.types.is_null(raw.type):
            empty = np.ones(len(raw), dtype=bool)
            typed: pa.Array = pa.nulls(len(raw), TYPED[col.type])
        else:
            if text and col.type not in (ColumnType.STR, ColumnType.JSON):
                raw = self.raw = pc.utf8_trim_whitespace(raw)
            empty_mask = pc.is_null(raw)
            if text:
                empty_mask = pc.or_kleene(empty_mask, pc.equal(pc.utf8_length(raw), 0))
            elif pa.types.is_floating(raw.type):
                empty_mask = pc.or_kleene(empty_mask, pc.is_nan(raw))
            empty = _np(empty_mask)
            typed = self._parse(text)
        if col.required:
            self.flag(empty, lambda i: "is required but empty")
        typed = self._constrain(typed, empty)
        missing = empty | self.bad
        if missing.any():
            typed = pc.if_else(pa.array(missing), pa.scalar(None, typed.type), typed)
        if col.default is not None and not col.required and empty.any():
            typed = pc.if_else(pa.array(empty), default_value(col), typed)
        return typed

    # -- parsing by type ------------------------------------------------------------------

    def _parse(self, text: bool) -> pa.Array:
        t = self.column.type
        if t in (ColumnType.STR, ColumnType.CURRENCY):
            return self.raw if text else pc.cast(self.raw, pa.string())
        if t is ColumnType.JSON:
            return self._parse_json()
        if t is ColumnType.INT:
            return self._parse_int(text)
        if t is ColumnType.FLOAT:
            return self._parse_float(text)
        return self._parse_timestamp(text)

    def _parse_int(self, text: bool) -> pa.Array:
        raw = self.raw
        if text:
            syntax = _np(pc.match_substring_regex(raw, INT_RE))
            self.flag(~syntax & _np(pc.is_valid(raw)) & _np(pc.greater(pc.utf8_length(raw), 0)),
                      lambda i: f"{show(self.cell(i))} is not an integer")
            digits = pc.replace_substring_regex(pc.replace_substring_regex(raw, r"\.0*$", ""), r"^\+", "")
            self.flag(syntax & _np(pc.greater(pc.utf8_length(pc.replace_substring_regex(digits, "^-", "")), 18)),
                      lambda i: f"{show(self.cell(i))} is out of range")
            usable = pa.array(syntax & ~self.bad)
            return pc.cast(pc.if_else(usable, digits, pa.scalar(None, pa.string())), pa.int64())
        if pa.types.is_floating(raw.type):
            whole = _np(pc.equal(pc.floor(raw), raw))
            finite = _np(pc.is_finite(raw))
            self.flag(~(whole & finite) & _np(pc.is_valid(raw)) & ~_np(pc.is_nan(raw)),
                      lambda i: f"{show(self.cell(i))} is not a whole number")
            self.flag(_np(pc.greater(pc.abs(raw), 9e18)), lambda i: f"{show(self.cell(i))} is out of range")
            return pc.cast(pc.if_else(pa.array(~self.bad), raw, pa.scalar(None, raw.type)), pa.int64(), safe=False)
        if pa.types.is_unsigned_integer(raw.type):
            self.flag(_np(pc.greater(raw, 2**63 - 1)), lambda i: f"{show(self.cell(i))} is out of range")
            return pc.cast(pc.if_else(pa.array(~self.bad), raw, pa.scalar(None, raw.type)), pa.int64())
        return pc.cast(raw, pa.int64())

    def _parse_float(self, text: bool) -> pa.Array:
        raw = self.raw
        if text:
            syntax = _np(pc.match_substring_regex(raw, FLOAT_RE))
            self.flag(~syntax & _np(pc.greater(pc.utf8_length(raw), 0)),
                      lambda i: f"{show(self.cell(i))} is not a number")
            typed = pc.cast(pc.if_else(pa.array(syntax), raw, pa.scalar(None, pa.string())), pa.float64())
        else:
            typed = pc.cast(raw, pa.float64())
            typed = pc.if_else(pc.is_nan(typed), pa.scalar(None, pa.float64()), typed)
        self.flag(~_np(pc.is_finite(typed)) & _np(pc.is_valid(typed)),
                  lambda i: f"{show(self.cell(i))} is not a finite number")
        return typed

    def _parse_timestamp(self, text: bool) -> pa.Array:
        raw = self.raw
        t = raw.type
        if not text:
            if pa.types.is_timestamp(t):
                # A timestamp without a zone is taken as UTC, like a naive ISO 8601 cell.
                return pc.cast(pc.cast(raw, pa.timestamp("us", tz=t.tz), safe=False), TIMESTAMP)
            if pa.types.is_date(t):
                return pc.cast(pc.cast(raw, pa.timestamp("us")), TIMESTAMP)
            return self._unix(pc.cast(raw, pa.float64()))
        present = _np(pc.greater(pc.utf8_length(raw), 0))
        unix = _np(pc.match_substring_regex(raw, UNIX_RE)) & present
        iso = present & ~unix
        typed = self._unix(pc.cast(pc.if_else(pa.array(unix), raw, pa.scalar(None, pa.string())), pa.float64()))
        if iso.any():
            candidates = pc.if_else(pa.array(iso), raw, pa.scalar(None, pa.string()))
            typed = pc.if_else(pa.array(iso), self._iso(candidates, iso), typed)
        return typed

    def _unix(self, seconds: pa.Array) -> pa.Array:
        finite = _np(pc.is_finite(seconds)) | ~_np(pc.is_valid(seconds))
        self.flag(~finite, lambda i: f"{show(self.cell(i))} is not a valid timestamp")
        seconds = pc.if_else(pa.array(finite), seconds, pa.scalar(None, pa.float64()))
        # Clamp before the integer cast so that absurd values (1e300) become a range error.
        clamped = pc.min_element_wise(pc.max_element_wise(seconds, -1e12, skip_nulls=False), 1e12, skip_nulls=False)
        micros = pc.cast(pc.round(pc.multiply(clamped, 1e6)), pa.int64())
        return pc.cast(micros, pa.timestamp("us")).cast(TIMESTAMP)

    def _iso(self, candidates: pa.Array, mask: np.ndarray) -> pa.Array:
        for target in (TIMESTAMP, pa.timestamp("us")):  # zoned cells, then cells without a zone
            try:
                return pc.cast(pc.cast(candidates, target), TIMESTAMP)
            except pa.ArrowInvalid:
                pass
        # A chunk mixing styles, or holding a bad cell: parse cell by cell to find out which.
        micros: list[int | None] = []
        failed = np.zeros(len(candidates), dtype=bool)
        for i, value in enumerate(candidates.to_pylist()):
            if value is None:
                micros.append(None)
                continue
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                failed[i] = True
                micros.append(None)
                continue
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            micros.append((parsed - EPOCH) // timedelta(microseconds=1))
        self.flag(failed, lambda i: f"{show(self.cell(i))} is not an ISO 8601 timestamp or Unix seconds")
        return pa.array(micros, type=pa.int64()).cast(pa.timestamp("us")).cast(TIMESTAMP)

    def _parse_json(self) -> pa.Array:
        out: list[str | None] = []
        reasons: dict[int, str] = {}
        for i, value in enumerate(self.raw.to_pylist()):
            if value is None or value == "":
                out.append(None)
                continue
            try:
                obj = json.loads(value)
            except ValueError as exc:
                reasons[i] = f"is not valid JSON ({exc.args[0].split(':')[0]})"
                out.append(None)
                continue
            if not isinstance(obj, dict):
                reasons[i] = f"must be a JSON object ({{...}}), got {type(obj).__name__}"
                out.append(None)
                continue
            out.append(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
        if reasons:
            mask = np.zeros(len(out), dtype=bool)
            mask[list(reasons)] = True
            self.flag(mask, lambda i: reasons[i])
        return pa.array(out, type=pa.string())

    # -- constraints on typed values ------------------------------------------------------

    def _constrain(self, typed: pa.Array, empty: np.ndarray) -> pa.Array:
        col = self.column
        t = col.type
        present = ~empty & ~self.bad
        if t in (ColumnType.STR, ColumnType.CURRENCY, ColumnType.JSON):
            self.flag(present & _np(pc.match_substring(typed, "\x00")), lambda i: "contains a NUL character")
        if t is ColumnType.STR:
            lengths = pc.utf8_length(typed)
            if col.max_length is not None:
                self.flag(present & _np(pc.greater(lengths, col.max_length)),
                          lambda i: f"is {lengths[i].as_py()} characters long; at most {col.max_length} are allowed")
            if col.identifier:
                self.flag(present & ~_np(pc.match_substring_regex(typed, ID_PATTERN.pattern)),
                          lambda i: f"{show(self.cell(i))} is not a valid id: use {ID_RULE}")
            if col.pattern is not None:
                hint = f" ({col.description})" if col.description else ""
                self.flag(present & ~_np(pc.match_substring_regex(typed, col.pattern)),
                          lambda i: f"{show(self.cell(i))} does not match {col.pattern}{hint}")
        if t is ColumnType.CURRENCY:
            self.flag(present & ~_np(pc.is_in(typed, value_set=pa.array(CURRENCIES))),
                      lambda i: f"unknown currency {show(self.cell(i))}; expected one of {', '.join(CURRENCIES)}")
        if col.choices is not None:
            if t is ColumnType.INT:
                allowed = pa.array([int(c) for c in col.choices], type=pa.int64())
            else:
                allowed = pa.array(list(col.choices), type=pa.string())
            self.flag(present & ~_np(pc.is_in(typed, value_set=allowed)),
                      lambda i: f"{show(self.cell(i))} is not one of: {', '.join(col.choices or ())}")
        if t in (ColumnType.INT, ColumnType.FLOAT):
            if col.min_value is not None:
                self.flag(present & ~self.bad & _np(pc.less(typed, col.min_value)),
                          lambda i: f"must be at least {_number(col.min_value)}, got {_number(typed[i].as_py())}")
            if col.max_value is not None:
                self.flag(present & ~self.bad & _np(pc.greater(typed, col.max_value)),
                          lambda i: f"must be at most {_number(col.max_value)}, got {_number(typed[i].as_py())}")
        if t is ColumnType.TIMESTAMP:
            micros = pc.cast(pc.cast(typed, pa.timestamp("us")), pa.int64())
            outside = _np(pc.or_(pc.less(micros, TS_MIN_US), pc.greater_equal(micros, TS_MAX_US)))
            self.flag(present & ~self.bad & outside,
                      lambda i: f"{show(self.cell(i))} is outside the years {YEAR_MIN}-{YEAR_MAX} "
                                "(Unix timestamps are in seconds, not milliseconds)")
        return typed


_DEFAULTS: dict[tuple[str, ColumnType, str], pa.Scalar] = {}


def default_value(column: Column) -> pa.Scalar:
    """The typed value of `column.default`, parsed like a cell (so the schema cannot lie)."""
    assert column.default is not None
    key = (column.name, column.type, column.default)
    if key not in _DEFAULTS:
        if column.default == "" and column.type is ColumnType.STR:
            _DEFAULTS[key] = pa.scalar("", pa.string())  # an empty text, not a missing one
        else:
            probe = _ColumnCheck(replace(column, required=False, default=None), pa.array([column.default]), 1)
            value = probe.run()
            if probe.issues or not value[0].is_valid:
                raise ValueError(f"the default of {column.name} is not a valid value: {column.default!r}")
            _DEFAULTS[key] = value[0]
    return _DEFAULTS[key]


def check_chunk(schema: Schema, chunk: Chunk, limit: int) -> Checked:
    """Type and check every present schema column of `chunk`; at most `limit` issues kept."""
    n = len(chunk)
    ok = np.ones(n, dtype=bool)
    issues: list[Issue] = []
    columns: dict[str, pa.Array] = {}
    for col in schema.columns:
        raw = chunk.columns.get(col.name)
        if raw is None:
            continue
        check = _ColumnCheck(col, raw, limit)
        columns[col.name] = check.run()
        ok &= ~check.bad
        issues.extend(check.issues)
    issues.sort(key=lambda issue: issue.index)
    return Checked(columns, chunk.positions, ok, issues[:limit])
