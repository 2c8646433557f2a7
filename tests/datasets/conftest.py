"""Fixtures for the dataset tests: `follows_schema(frame, kind)` asserts a frame follows one
import-schema kind of `marketpilot.dataimport.schemas`."""

from __future__ import annotations

import pandas as pd
import pytest

from marketpilot.dataimport.schemas import SCHEMAS, ColumnType
from marketpilot.domain.entities import CURRENCY_EXPONENT


def assert_follows_schema(frame: pd.DataFrame, kind: str) -> None:
    schema = SCHEMAS[kind]
    names = list(frame.columns)
    assert set(schema.required) <= set(names), f"missing required {set(schema.required) - set(names)}"
    assert names == [n for n in schema.names if n in names], "columns out of schema order or unknown"
    by_name = {c.name: c for c in schema.columns}
    for name in names:
        col, values = by_name[name], frame[name]
        if col.required:
            assert not values.isna().any(), f"{kind}.{name} has nulls"
        present = values.dropna()
        if col.type is ColumnType.TIMESTAMP:
            assert isinstance(values.dtype, pd.DatetimeTZDtype) and str(values.dt.tz) == "UTC", name
        elif col.type is ColumnType.INT:
            assert pd.api.types.is_integer_dtype(values.dtype), f"{kind}.{name} is {values.dtype}"
        elif col.type is ColumnType.FLOAT:
            assert pd.api.types.is_float_dtype(values.dtype), f"{kind}.{name} is {values.dtype}"
        else:
            assert pd.api.types.is_string_dtype(values.dtype), f"{kind}.{name} is {values.dtype}"
        if col.type is ColumnType.CURRENCY:
            assert set(present.unique()) <= set(CURRENCY_EXPONENT)
        if col.choices is not None:
            assert {str(v) for v in present.unique()} <= set(col.choices), f"{kind}.{name} outside choices"
        if col.min_value is not None and len(present):
            assert present.min() >= col.min_value, f"{kind}.{name} below {col.min_value}"


@pytest.fixture
def follows_schema():
    return assert_follows_schema
