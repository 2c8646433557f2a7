"""CDNOW purchases (Fader & Hardie's CDNOW master file), from PyPI ``Lifetimes==0.11.3``
(``lifetimes/datasets/CDNOW_master.txt``).

69,659 purchase records of 23,570 customers who first bought in Q1 1997, followed to the end
of June 1998. Whitespace-separated: customer id, date (YYYYMMDD), number of CDs, dollar value
(US$, the whole record; 80 records are $0).

The file has no item, seller or region: each record becomes one order line of a single
synthetic listing ``cdnow`` sold by a single synthetic seller ``cdnow``.
- :func:`to_orders` (``orders`` schema): ``order_id = "cdnow-<record>"`` (a customer can
  have several records on one day; each stays its own order), ``user_id`` = the file's
  zero-padded customer number (``00042``), ``quantity`` = CDs,
  ``unit_price_minor`` = dollar value / CDs in cents, rounded (so quantity × unit price can
  differ from the record's value by less than a cent per CD; exact values are in ``amounts``),
  ``created_at`` = the day at 00:00 UTC.
- :func:`to_sales` (``sales`` schema): CDs per day in region ``all`` with the day's mean
  price per CD, the natural input for demand forecasting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from marketpilot.datasets._package import PackageSource, locate
from marketpilot.datasets._schema import conform, to_minor_units

__all__ = ["LISTING_ID", "SELLER_ID", "SOURCE", "CDNOW", "check_installed", "load", "to_orders", "to_sales"]

SOURCE = PackageSource("cdnow", "lifetimes", "Lifetimes==0.11.3", "datasets")
FILE = "CDNOW_master.txt"
LISTING_ID = "cdnow"
SELLER_ID = "cdnow"
REGION = "all"
CURRENCY = "USD"


@dataclass(frozen=True)
class CDNOW:
    """The raw records as arrays, in file order."""

    customer_id: np.ndarray  # int64 (n,)
    date: np.ndarray  # datetime64[D] (n,)
    quantity: np.ndarray  # int64 (n,), CDs bought
    amount: np.ndarray  # float64 (n,), US$ for the record

    def __len__(self) -> int:
        return int(self.customer_id.shape[0])

    @property
    def n_customers(self) -> int:
        return int(np.unique(self.customer_id).shape[0])


def check_installed(source: PackageSource = SOURCE) -> Path:
    """Path of CDNOW_master.txt; raises DatasetNotInstalled when Lifetimes is missing."""
    return locate(source, FILE) / FILE


def load(source: PackageSource = SOURCE) -> CDNOW:
    path = check_installed(source)
    frame = pd.read_csv(path, sep=r"\s+", header=0, names=["customer_id", "date", "quantity", "amount"],
                        dtype={"customer_id": "int64", "date": "str", "quantity": "int64", "amount": "float64"})
    return CDNOW(
        customer_id=frame["customer_id"].to_numpy(np.int64),
        date=pd.to_datetime(frame["date"], format="%Y%m%d").to_numpy().astype("datetime64[D]"),
        quantity=frame["quantity"].to_numpy(np.int64),
        amount=frame["amount"].to_numpy(np.float64),
    )


def _customer_ids(data: CDNOW) -> np.ndarray:
    """The source's zero-padded customer number, e.g. ``00042``."""
    return np.char.zfill(data.customer_id.astype(str), 5)


def to_orders(data: CDNOW) -> pd.DataFrame:
    """The ``orders`` import schema, one order line per record; see the module doc."""
    n = len(data)
    cents = to_minor_units(data.amount, CURRENCY)
    unit = np.floor(cents / data.quantity + 0.5).astype(np.int64)
    return conform("orders", {
        "order_id": np.char.add("cdnow-", np.arange(n).astype(str)),
        "user_id": _customer_ids(data),
        "seller_id": SELLER_ID,
        "listing_id": LISTING_ID,
        "quantity": data.quantity,
        "unit_price_minor": unit,
        "currency": CURRENCY,
        "created_at": data.date.astype("datetime64[s]"),
    }, length=n)


def to_sales(data: CDNOW) -> pd.DataFrame:
    """The ``sales`` import schema: CDs sold per day (days without sales left out)."""
    cents = to_minor_units(data.amount, CURRENCY)
    daily = (pd.DataFrame({"date": data.date.astype("datetime64[s]"), "quantity": data.quantity, "cents": cents})
             .groupby("date", sort=True).sum())
    price = np.floor(daily["cents"].to_numpy() / daily["quantity"].to_numpy() + 0.5).astype(np.int64)
    return conform("sales", {
        "listing_id": LISTING_ID,
        "region": REGION,
        "date": daily.index.to_numpy(),
        "quantity": daily["quantity"].to_numpy(np.float64),
        "price_minor": price,
        "currency": CURRENCY,
    }, length=len(daily))
