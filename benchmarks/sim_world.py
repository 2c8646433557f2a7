"""A simulated marketplace with the ground truth its generator knows, by catalogue index.

The recommendation harnesses score systems against what the simulator knows and the data does
not say: each user's true utility for each listing, and which listings are cold-start (created
in the last days, never shown). This loads one simulation and maps the ground-truth rows
(entity-number order) onto the catalogue indices the recommender uses.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class SimWorld:
    frame: pd.DataFrame  # interactions, import schema
    listings: pd.DataFrame
    users: pd.DataFrame
    catalog: object  # recommend.model.Catalog
    data: object  # recommend.interactions.Interactions
    factors: np.ndarray  # (n_items, d) true item factors
    quality: np.ndarray  # (n_items,)
    log_relative_price: np.ndarray  # (n_items,) log(base price / reference price)
    price_minor: np.ndarray  # (n_items,) listing price
    cold: np.ndarray  # (n_items,) bool: the simulator's cold-start listings
    tastes: np.ndarray  # (n_users, d)
    price_sensitivity: np.ndarray  # (n_users,)
    simulate_s: float

    def utility(self, user: int) -> np.ndarray:
        """True utility of every listing for catalogue user `user`."""
        from marketpilot.simulate.behaviour import utility

        n = self.catalog.n_items  # type: ignore[attr-defined]
        return utility(np.repeat(self.tastes[user][None, :], n, 0), self.factors, self.quality,
                       np.full(n, self.price_sensitivity[user]), self.log_relative_price)


def load(listings: int, users: int, days: int, seed: int) -> SimWorld:
    from marketpilot.recommend.catalog_data import build_catalog
    from marketpilot.recommend.interactions import Interactions
    from marketpilot.simulate import SimulationConfig, simulate

    with tempfile.TemporaryDirectory(prefix="bench-sim-") as scratch:
        out = Path(scratch)
        t0 = time.perf_counter()
        simulate(SimulationConfig(listings=listings, users=users, days=days, seed=seed), out=out)
        sim_s = time.perf_counter() - t0
        frame = pd.read_csv(out / "interactions.csv", dtype={"user_id": str, "listing_id": str})
        listing_frame = pd.read_csv(out / "listings.csv", dtype=str)
        user_frame = pd.read_csv(out / "users.csv", dtype=str)
        truth = out / "ground_truth"
        factors = np.load(truth / "item_factors.npy")
        taste = np.load(truth / "user_taste.npy")
        items_truth = pd.read_parquet(truth / "listings.parquet")
        users_truth = pd.read_parquet(truth / "users.parquet")

    catalog = build_catalog(frame, listing_frame, user_frame)
    data = Interactions.from_frame(frame, catalog)
    item_row = np.array([catalog.item_index[i] for i in items_truth["listing_id"].astype(str)])
    user_row = np.array([catalog.user_index[u] for u in users_truth["user_id"].astype(str)])
    n_items, n_users = catalog.n_items, catalog.n_users
    f = np.zeros((n_items, factors.shape[1]), np.float32)
    f[item_row] = factors
    q = np.zeros(n_items)
    q[item_row] = items_truth["quality"].to_numpy(np.float64)
    base = items_truth["base_price_minor"].to_numpy(np.float64)
    rel_price = np.zeros(n_items)
    rel_price[item_row] = np.log(base / items_truth["reference_price_minor"].to_numpy(np.float64))
    price = np.zeros(n_items)
    price[item_row] = base
    cold = np.zeros(n_items, bool)
    cold[item_row] = items_truth["cold_start"].to_numpy(bool)
    sens = np.zeros(n_users)
    sens[user_row] = users_truth["price_sensitivity"].to_numpy(np.float64)
    tastes = np.zeros((n_users, taste.shape[1]), np.float32)
    tastes[user_row] = taste
    return SimWorld(frame, listing_frame, user_frame, catalog, data, f, q, rel_price, price, cold, tastes, sens, sim_s)
