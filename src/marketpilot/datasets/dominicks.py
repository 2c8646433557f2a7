"""Dominick's Finer Foods refrigerated orange juice (Chicago, 1990–92), from Debian's
``r-cran-bayesm`` (``usr/lib/R/site-library/bayesm/data/orangeJuice.rda``).

The .deb is unpacked by ``python -m marketpilot.datasets.install_debian`` (part of
``make datasets``) into ``$MARKETPILOT_DATASETS_DIR/bayesm`` (default
``~/.cache/marketpilot/datasets/bayesm``) and read with PyPI ``rdata``.

``yx``: 106,139 rows × 19 — store, brand (1–11), week (40–160), logmove (log units sold),
constant, price1–price11 (every brand's shelf price in the store that week, US$ per ounce),
deal (in-store coupon, 0/1), feat (feature advertising, a share in [0, 1]), profit (gross
margin, %). ``storedemo``: 83 stores' demographics.

Conversion to the ``sales`` import schema (:func:`to_sales`): ``listing_id = "oj-brand-<b>"``,
``region = "store-<s>"``, ``date`` = the start of Dominick's week (week 1 starts Thursday
1989-09-14, so week ``w`` starts 1989-09-14 + 7·(w−1) days), ``quantity = exp(logmove)``
rounded to whole units, ``price_minor`` = the brand's own price column in US cents per
``unit_ounces`` (default 64, the common carton; per-ounce cents would round to 2–6 and lose
the price signal), ``currency = "USD"``, ``promo = 1`` when ``deal == 1`` or ``feat > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from marketpilot.datasets._package import DatasetNotInstalled
from marketpilot.datasets._schema import conform, to_minor_units
from marketpilot.datasets.install_debian import rda_path

__all__ = ["INSTALL_COMMAND", "WEEK1_START", "DominicksOJ", "check_installed", "load", "to_sales", "week_start"]

DATASET = "dominicks-oj"
INSTALL_COMMAND = "python -m marketpilot.datasets.install_debian"
WEEK1_START = date(1989, 9, 14)
CURRENCY = "USD"


@dataclass(frozen=True)
class DominicksOJ:
    yx: pd.DataFrame  # the bayesm frame, 0-based index, integer columns as int64
    storedemo: pd.DataFrame  # store demographics (STORE, AGE60, EDUC, ...)

    @property
    def n_brands(self) -> int:
        return int(self.yx["brand"].nunique())


def _ints(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_integer_dtype(dtype) and not frame[name].isna().any():
            frame[name] = frame[name].astype("int64")
    return frame


def check_installed(path: Path | None = None) -> Path:
    """Path of ``orangeJuice.rda`` (the datasets cache unless ``path`` is given); raises
    DatasetNotInstalled, naming the install command, when it is not there."""
    path = Path(path) if path is not None else rda_path()
    if not path.is_file():
        raise DatasetNotInstalled(DATASET, INSTALL_COMMAND,
                                  f"{path} not found (Debian package r-cran-bayesm, unpacked)")
    return path


def load(path: Path | None = None) -> DominicksOJ:
    """Read ``orangeJuice.rda`` (from the datasets cache unless ``path`` is given)."""
    path = check_installed(path)
    import rdata  # a project dependency; imported here because it is only needed for this file

    oj = rdata.read_rda(path)["orangeJuice"]
    return DominicksOJ(yx=_ints(oj["yx"]), storedemo=_ints(oj["storedemo"]))


def week_start(week: np.ndarray | pd.Series | int) -> pd.DatetimeIndex:
    """UTC midnight of the first day (a Thursday) of Dominick's week number(s)."""
    weeks = np.atleast_1d(np.asarray(week, dtype=np.int64))
    return pd.Timestamp(WEEK1_START, tz="UTC") + pd.to_timedelta((weeks - 1) * 7, unit="D")


def to_sales(data: DominicksOJ, unit_ounces: float = 64.0) -> pd.DataFrame:
    """The ``sales`` import schema, one row per (brand, store, week); see the module doc."""
    yx = data.yx
    brand = yx["brand"].to_numpy(np.int64)
    prices = yx[[f"price{b}" for b in range(1, 12)]].to_numpy(np.float64)
    own_price = prices[np.arange(len(yx)), brand - 1]
    promo = ((yx["deal"].to_numpy() == 1) | (yx["feat"].to_numpy() > 0)).astype(np.int64)
    return conform("sales", {
        "listing_id": np.char.add("oj-brand-", brand.astype(str)),
        "region": np.char.add("store-", yx["store"].to_numpy(np.int64).astype(str)),
        "date": week_start(yx["week"].to_numpy()),
        "quantity": np.round(np.exp(yx["logmove"].to_numpy(np.float64))),
        "price_minor": to_minor_units(own_price * unit_ounces, CURRENCY),
        "currency": CURRENCY,
        "promo": promo,
    }, length=len(yx))
