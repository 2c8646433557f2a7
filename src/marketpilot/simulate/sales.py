"""The daily sales panel (sales.csv): units per listing, region and day, for forecasting.

sales.csv covers a sample of `sales_listings` shown listings over the whole window, zeros
included (a complete panel, as forecasting needs). It counts the listing's sales through all
channels, of which the buyers in users.csv are a sample, so its volumes are larger than what
orders.csv alone would give. Units are Poisson with mean

    base_demand_i * region_share_r * exp(season(leaf_i, day)) * (price_i,day / base_price_i) ** elasticity(leaf_i)

where season() is the category's yearly cycle plus weekday shape and price_i,day comes from
`prices.PricePath` (repricing + promotions). The expected value of every row is written to
`ground_truth/sales_expected.parquet`, so forecasts can be scored against the true mean as
well as against the noisy realisation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from marketpilot.simulate.categories import Catalogue
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import entity_ids
from marketpilot.simulate.listings import Listings
from marketpilot.simulate.output import take
from marketpilot.simulate.prices import PricePath

ROWS_PER_CHUNK = 500_000
SALES_EXPECTED_SCHEMA = pa.schema([("listing_id", pa.string()), ("region", pa.string()), ("day", pa.int32()),
                                   ("expected_quantity", pa.float64())])
BASE_DEMAND_MEDIAN = 1.5  # units per day over all regions
BASE_DEMAND_SPREAD = 0.8
QUALITY_EFFECT = 0.3


@dataclass(frozen=True)
class SalesPanel:
    listing: np.ndarray  # panel listings, sorted
    base_demand: np.ndarray  # units per day at base price, average season, all regions


def choose_panel(rng: np.random.Generator, config: SimulationConfig, listings: Listings) -> SalesPanel:
    shown = np.flatnonzero(listings.shown)
    n = min(config.sales_listings, len(shown))
    panel = np.sort(rng.choice(shown, n, replace=False)) if n else np.zeros(0, np.int64)
    base = np.exp(np.log(BASE_DEMAND_MEDIAN) + rng.normal(0.0, BASE_DEMAND_SPREAD, n)
                  + QUALITY_EFFECT * listings.quality[panel])
    return SalesPanel(listing=panel.astype(np.int64), base_demand=base)


def sales_chunks(rng: np.random.Generator, config: SimulationConfig, panel: SalesPanel, listings: Listings,
                 catalogue: Catalogue, geo: Geography, prices: PricePath
                 ) -> Iterator[tuple[dict[str, object], dict[str, object]]]:
    """(sales.csv rows, expected-value truth rows), ordered by listing, region, date."""
    n_r, n_d = geo.n_regions, config.days
    per_listing = n_r * n_d
    step = max(1, ROWS_PER_CHUNK // per_listing)
    for lo in range(0, len(panel.listing), step):
        idx = np.arange(lo, min(len(panel.listing), lo + step))
        listing = np.repeat(panel.listing[idx], per_listing)
        region = np.tile(np.repeat(np.arange(n_r), n_d), len(idx))
        day = np.tile(np.arange(n_d), n_r * len(idx))
        paid, _, promo = prices.price(listing, day)
        leaf = listings.leaf[listing].astype(np.int64)
        epoch_day = config.start_epoch // 86_400 + day
        log_mean = (np.log(np.repeat(panel.base_demand[idx], per_listing)) + np.log(geo.buyer_share[region])
                    + catalogue.log_demand_shift(leaf, epoch_day)
                    + catalogue.elasticity[leaf] * np.log(paid / listings.base_price_minor[listing]))
        expected = np.exp(log_mean)
        quantity = rng.poisson(expected).astype(np.float64)
        date = config.start_epoch + day * 86_400
        listing_id = entity_ids("listing", listing)
        region_code = take(geo.codes, region)
        rows = {
            "listing_id": listing_id, "region": region_code, "date": date, "quantity": quantity,
            "price_minor": paid, "currency": pa.repeat(config.currency, len(listing)),
            "promo": promo.astype(np.int64),
        }
        truth = {"listing_id": listing_id, "region": region_code, "day": day.astype(np.int32),
                 "expected_quantity": expected}
        yield rows, truth
