"""The data sets `marketpilot evaluate fraud` runs on, as :class:`~marketpilot.fraud.evaluate.EvalData`.

* ``ulb-creditcard``: the ULB/Worldline card set (anonymised PCA columns, no ids). Our
  features: V1-V28, ``log1p(Amount)`` and the hour of day on the circle (sin, cos); the
  raw columns for the baselines: Time, V1-V28, Amount as published.
* ``simulated``: a seeded run of `marketpilot.simulate` (transactions + users), featurised
  by replaying every payment attempt in time order through
  :class:`~marketpilot.fraud.features.FeatureState` (labels become visible to the
  ``*_fraud_seen`` features only after the label delay, and only for training rows).
* a PATH: a directory holding ``transactions.csv`` (the import schema, with ``label``) and
  optionally ``users.csv``, or a single transactions CSV/Parquet file; featurised the same way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.evaluate import TEST_FRACTION, EvalData
from marketpilot.fraud.features import FEATURES, FeatureState

__all__ = ["RAW_TRANSACTION_COLUMNS", "load", "replay", "simulated", "ulb"]

RAW_TRANSACTION_COLUMNS = ("log_amount", "hour", "ip_ship_mismatch", "has_device", "has_ip")
SIMULATION: dict[str, Any] = {"listings": 3_000, "users": 40_000, "days": 60, "seed": 11, "fraud_rate": 0.01}


def ulb() -> EvalData:
    from marketpilot import datasets

    d = datasets.load("ulb-creditcard")
    order = np.argsort(d.times, kind="stable")
    raw = d.features[order].astype(np.float64)
    hour = (raw[:, 0] % 86_400) / 3_600
    ours = np.column_stack([raw[:, 1:29], np.log1p(raw[:, 29]), np.sin(2 * np.pi * hour / 24),
                            np.cos(2 * np.pi * hour / 24)])
    names = (*d.feature_names[1:29], "log_amount", "hour_sin", "hour_cos")
    return EvalData("ulb-creditcard", ours, names, raw, d.labels[order].astype(np.int64), order.astype(np.int64))


def simulated(out: Path | None = None) -> EvalData:
    from marketpilot.simulate import SimulationConfig, simulate

    with tempfile.TemporaryDirectory(prefix="marketpilot-fraud-sim-") as scratch:
        target = out or Path(scratch)
        simulate(SimulationConfig(**SIMULATION), out=target)
        return from_directory(target, name="simulated")


def load(name: str) -> EvalData:
    if name == "ulb-creditcard":
        return ulb()
    if name == "simulated":
        return simulated()
    path = Path(name)
    if path.is_dir():
        return from_directory(path, name=str(path))
    if path.is_file():
        return from_transactions(_read(path), None, name=str(path))
    raise FileNotFoundError(f"dataset {name!r}: not 'ulb-creditcard', 'simulated' or an existing path")


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)


def from_directory(path: Path, *, name: str) -> EvalData:
    txns = path / "transactions.csv"
    if not txns.exists():
        raise FileNotFoundError(f"{path} has no transactions.csv")
    users = path / "users.csv"
    data = from_transactions(_read(txns), _read(users) if users.exists() else None, name=name)
    truth = path / "ground_truth" / "fraud_transactions.csv"  # written by `marketpilot simulate`
    if truth.exists():
        data.extra["truth"] = pd.read_csv(truth, dtype=str)
    return data


def _time(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return pd.to_datetime(numeric, unit="s", utc=True)
    return pd.to_datetime(values, utc=True, format="ISO8601")


def requests(frame: pd.DataFrame) -> list[FraudRequest]:
    def opt(col: str) -> list[str | None]:
        if col not in frame:
            return [None] * len(frame)
        return [v if isinstance(v, str) and v else None for v in frame[col].tolist()]

    times = _time(frame["timestamp"]).dt.to_pydatetime()
    cols = {c: opt(c) for c in ("order_id", "instrument_fingerprint", "device_id", "ip", "email_domain", "ip_region",
                                "shipping_region")}
    out = []
    for i, (tid, user, amount, currency) in enumerate(zip(
            frame["transaction_id"].tolist(), frame["user_id"].tolist(), frame["amount_minor"].tolist(),
            frame["currency"].tolist(), strict=True)):
        out.append(FraudRequest(
            transaction_id=str(tid), user_id=str(user), amount_minor=int(amount), currency=str(currency),
            timestamp=times[i], order_id=cols["order_id"][i],
            instrument_fingerprint=cols["instrument_fingerprint"][i], device_id=cols["device_id"][i],
            ip=cols["ip"][i], email_domain=cols["email_domain"][i], ip_region=cols["ip_region"][i],
            shipping_region=cols["shipping_region"][i]))
    return out


def replay(reqs: list[FraudRequest], labels: np.ndarray, state: FeatureState, *, labelled_until: int) -> np.ndarray:
    """Feature rows of `reqs` (time order) as a live service would have computed them; the
    labels of the first `labelled_until` rows are folded in after the label delay."""
    X = np.empty((len(reqs), len(FEATURES)))
    for i, r in enumerate(reqs):
        state.vector(r, out=X[i])
        state.observe(r)
        if i < labelled_until and labels[i]:
            state.label(r.transaction_id, True)
    return X


def from_transactions(frame: pd.DataFrame, users: pd.DataFrame | None, *, name: str) -> EvalData:
    if "label" not in frame:
        raise ValueError(f"{name}: transactions need a label column (1 = confirmed fraud)")
    frame = frame.assign(_t=_time(frame["timestamp"])).sort_values(["_t", "transaction_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    labels = pd.to_numeric(frame["label"], errors="coerce").fillna(0).astype(np.int64).to_numpy()
    reqs = requests(frame)
    state = FeatureState()
    if users is not None:
        created = (_time(users["created_at"]).dt.to_pydatetime() if "created_at" in users
                   else [None] * len(users))
        state.add_users(zip(users["user_id"].tolist(), users.get("region", pd.Series([None] * len(users))).tolist(),
                            created, strict=True))
    n = len(reqs)
    train_rows = n - int(np.ceil(n * TEST_FRACTION))
    X = replay(reqs, labels, state, labelled_until=train_rows)
    raw = np.column_stack([
        X[:, FEATURES.index("log_amount")], X[:, FEATURES.index("hour")], X[:, FEATURES.index("ip_ship_mismatch")],
        [r.device_id is not None for r in reqs], [r.ip is not None for r in reqs],
    ]).astype(np.float64)
    return EvalData(name, X, FEATURES, raw, labels, frame["transaction_id"].to_numpy(dtype=str),
                    extra={"frame": frame, "requests": reqs})


