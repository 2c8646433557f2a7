"""Shape a loader's columns into one import-schema kind (`marketpilot.dataimport.schemas`).

Columns come out in schema order with the schema's names, and typed: STR/CURRENCY as pandas
``string``, INT as ``int64`` (``Int64`` when an optional column has gaps), FLOAT as ``float64``,
TIMESTAMP as ``datetime64[ns, UTC]``, JSON as a serialised JSON object per cell. Required
columns must be present and non-null, choices and minimums hold; anything else is a loader
bug and raises ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from marketpilot.dataimport.schemas import SCHEMAS, ColumnType
from marketpilot.domain.entities import CURRENCY_EXPONENT

__all__ = ["conform", "to_minor_units"]


def to_minor_units(amount: Any, currency: str) -> np.ndarray:
    """Decimal amounts (major units) to integer minor units, rounded half away from zero."""
    scale = 10 ** CURRENCY_EXPONENT[currency]
    a = np.asarray(amount, dtype=np.float64) * scale
    return (np.sign(a) * np.floor(np.abs(a) + 0.5)).astype(np.int64)


def _as_utc(values: Any) -> pd.Series:
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is None:
            return s.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
        return s.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_numeric_dtype(s.dtype):
        return pd.to_datetime(s, unit="s", utc=True).astype("datetime64[ns, UTC]")
    return pd.to_datetime(s, utc=True).astype("datetime64[ns, UTC]")


def conform(kind: str, columns: Mapping[str, Any], length: int | None = None) -> pd.DataFrame:
    """A DataFrame of schema ``kind`` from ``columns`` (name → array or scalar).

    Scalars are broadcast to ``length`` (or to the length of the array columns). Optional
    schema columns that are not given are left out rather than filled with nulls.
    """
    schema = SCHEMAS[kind]
    unknown = set(columns) - set(schema.names)
    if unknown:
        raise ValueError(f"{kind}: columns not in the import schema: {sorted(unknown)}")
    missing = [n for n in schema.required if n not in columns]
    if missing:
        raise ValueError(f"{kind}: required columns missing: {missing}")
    if length is None:
        lengths = {len(v) for v in columns.values() if not np.isscalar(v) and v is not None}
        if len(lengths) != 1:
            raise ValueError(f"{kind}: cannot infer the row count from column lengths {lengths}")
        length = lengths.pop()
    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        if col.name not in columns:
            continue
        raw = columns[col.name]
        if np.isscalar(raw) or raw is None:
            raw = [raw] * length
        values = raw.reset_index(drop=True) if isinstance(raw, pd.Series) else pd.Series(raw)
        if len(values) != length:
            raise ValueError(f"{kind}.{col.name}: {len(values)} values for {length} rows")
        if col.type is ColumnType.TIMESTAMP:
            series = _as_utc(values)
        elif col.type is ColumnType.INT:
            series = values.astype("Int64")
            if not series.isna().any():
                series = series.astype("int64")
        elif col.type is ColumnType.FLOAT:
            series = values.astype("float64")
        elif col.type is ColumnType.JSON:
            series = values.astype("string")
        else:  # STR, CURRENCY
            series = values.astype("string")
        nulls = series.isna()
        if col.required and nulls.any():
            raise ValueError(f"{kind}.{col.name}: {int(nulls.sum())} nulls in a required column")
        present = series[~nulls]
        if col.type is ColumnType.CURRENCY:
            bad = set(present.unique()) - set(CURRENCY_EXPONENT)
            if bad:
                raise ValueError(f"{kind}.{col.name}: unknown currencies {sorted(bad)}")
        if col.choices is not None:
            allowed = set(col.choices)
            seen = {str(v) for v in present.unique()}
            if not seen <= allowed:
                raise ValueError(f"{kind}.{col.name}: values {sorted(seen - allowed)} not in {col.choices}")
        if col.min_value is not None and len(present) and float(present.min()) < col.min_value:
            raise ValueError(f"{kind}.{col.name}: values below the minimum {col.min_value}")
        out[col.name] = series
    return pd.DataFrame(out)
