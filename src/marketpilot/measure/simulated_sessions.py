"""Per-session outcomes of a simulator run: the data-generating process behind the
experiment and geo-holdout benchmarks.

A session's GMV is the sum over its purchase interactions of quantity × the listing's price;
``clicked`` says whether it clicked anything; ``region`` is the buyer's region
(:mod:`marketpilot.simulate.geography`); ``day`` counts from the first simulated day.
Reading the files the simulator writes keeps the benchmarks honest about the distribution
(about 6-7% of sessions buy, GMV heavy-tailed) without re-implementing the simulator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marketpilot.simulate.config import CURRENCY_EXPONENT

__all__ = ["SimulatedSessions", "load_simulated_sessions", "simulate_sessions"]


@dataclass(frozen=True)
class SimulatedSessions:
    gmv: np.ndarray  # float64 (n,), major currency units
    clicked: np.ndarray  # bool (n,)
    region: np.ndarray  # int64 (n,), index into ``regions``
    day: np.ndarray  # int64 (n,), 0-based
    regions: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.gmv.shape[0])


def load_simulated_sessions(out: Path) -> SimulatedSessions:
    """Sessions of a simulator output directory (``marketpilot simulate --out DIR``)."""
    import pandas as pd

    sessions = pd.read_parquet(out / "ground_truth" / "sessions.parquet", columns=["session_id", "user_id", "started_at"])
    inter = pd.read_csv(out / "interactions.csv", usecols=["listing_id", "event", "value", "session_id"])
    listings = pd.read_csv(out / "listings.csv", usecols=["listing_id", "price_minor"])
    users = pd.read_csv(out / "users.csv", usecols=["user_id", "region"])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    minor = 10 ** CURRENCY_EXPONENT.get(manifest["config"]["currency"], 2)
    buys = inter[inter["event"] == "purchase"].merge(listings, on="listing_id", how="left")
    buys["gmv"] = buys["price_minor"].astype(float) * buys["value"].fillna(1.0).astype(float) / minor
    gmv = sessions[["session_id"]].merge(buys.groupby("session_id")["gmv"].sum().reset_index(), how="left")
    clicked = sessions["session_id"].isin(inter.loc[inter["event"] == "click", "session_id"].unique())
    region = sessions[["user_id"]].merge(users, on="user_id", how="left")["region"].astype(str)
    codes = tuple(sorted(region.unique()))
    started = pd.to_datetime(sessions["started_at"], utc=True)
    day = (started.dt.floor("D") - started.dt.floor("D").min()).dt.days
    return SimulatedSessions(gmv=gmv["gmv"].fillna(0.0).to_numpy(np.float64), clicked=clicked.to_numpy(bool),
                             region=np.searchsorted(np.array(codes), region.to_numpy()).astype(np.int64),
                             day=day.to_numpy(np.int64), regions=codes)


def simulate_sessions(out: Path, *, listings: int = 2_000, users: int = 5_000, days: int = 28,
                      seed: int = 0) -> SimulatedSessions:
    """Run the simulator into ``out`` (reused if already there for the same config) and read its sessions."""
    from marketpilot.simulate import SimulationConfig, simulate

    marker = out / f".sessions-{listings}-{users}-{days}-{seed}"
    if not marker.exists():
        simulate(SimulationConfig(listings=listings, users=users, days=days, seed=seed), out=out)
        marker.touch()
    return load_simulated_sessions(out)
