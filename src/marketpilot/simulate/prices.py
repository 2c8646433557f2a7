"""The price of every listing on every day, as a pure function of (listing, day).

Prices move for two reasons, so that demand data identifies the price elasticity:
* a one-off repricing: half of the listings change their regular price once, by a factor in
  [exp(-0.15), exp(0.15)], on a day drawn from 60 days before the window to its last day;
* promotions: each listing's weeks (aligned at a listing-specific offset) are on promotion
  with probability `PROMO_PROBABILITY`, at a discount of 10-35 %.

Nothing is stored per (listing, day): `hash_uniform` recomputes the same draws wherever they
are needed (order lines, the sales panel, listings.csv), so they always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketpilot.simulate.randomness import Streams, hash_uniform

CHANGE_PROBABILITY = 0.5
CHANGE_LOG_RANGE = 0.15
CHANGE_LOOKBACK_DAYS = 60
PROMO_PROBABILITY = 0.12
PROMO_BLOCK_DAYS = 7
PROMO_DISCOUNT = (0.10, 0.35)


def charm_price(minor: np.ndarray, minor_per_major: int) -> np.ndarray:
    """Round to the price points shops use: 19.99 rather than 19.63 (when minor units exist)."""
    minor = np.asarray(minor, dtype=np.float64)
    if minor_per_major >= 100:
        return np.where(minor >= minor_per_major, np.ceil(minor / minor_per_major) * minor_per_major - 1,
                        np.maximum(1, np.round(minor))).astype(np.int64)
    return np.maximum(1, np.round(minor)).astype(np.int64)


@dataclass(frozen=True)
class PricePath:
    """Regular and promotional prices over time for listings with a given base price."""

    base_price_minor: np.ndarray  # (N,) regular price before any repricing
    minor_per_major: int
    days: int
    salt: np.uint64

    @classmethod
    def create(cls, streams: Streams, base_price_minor: np.ndarray, minor_per_major: int, days: int) -> PricePath:
        return cls(base_price_minor, minor_per_major, days, streams.salt("prices"))

    def repricing(self, listing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(changes?, day of the change relative to the window start, price factor)."""
        listing = np.asarray(listing, dtype=np.int64)
        changes = hash_uniform(self.salt, 1, listing) < CHANGE_PROBABILITY
        span = self.days + CHANGE_LOOKBACK_DAYS
        day = np.floor(hash_uniform(self.salt, 2, listing) * span).astype(np.int64) - CHANGE_LOOKBACK_DAYS
        factor = np.exp(CHANGE_LOG_RANGE * (2 * hash_uniform(self.salt, 3, listing) - 1))
        return changes, day, factor

    def regular(self, listing: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        """Regular (non-promotional) price in minor units on `day` (0 = first window day)."""
        listing = np.asarray(listing, dtype=np.int64)
        changes, change_day, factor = self.repricing(listing)
        applied = np.where(changes & (np.asarray(day) >= change_day), factor, 1.0)
        return charm_price(self.base_price_minor[listing] * applied, self.minor_per_major)

    def promotion(self, listing: np.ndarray, day: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(on promotion?, discount share) of `listing` on `day`."""
        listing = np.asarray(listing, dtype=np.int64)
        offset = np.floor(hash_uniform(self.salt, 4, listing) * PROMO_BLOCK_DAYS).astype(np.int64)
        block = (np.asarray(day, dtype=np.int64) + offset) // PROMO_BLOCK_DAYS
        on = hash_uniform(self.salt, 5, listing, block) < PROMO_PROBABILITY
        low, high = PROMO_DISCOUNT
        discount = low + (high - low) * hash_uniform(self.salt, 6, listing, block)
        return on, np.where(on, discount, 0.0)

    def price(self, listing: np.ndarray, day: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(price paid in minor units, regular price, on promotion?) of `listing` on `day`."""
        regular = self.regular(listing, day)
        on, discount = self.promotion(listing, day)
        paid = np.maximum(1, np.round(regular * (1.0 - discount))).astype(np.int64)
        return paid, regular, on
