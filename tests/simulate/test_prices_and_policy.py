"""Prices agree wherever they appear; the logging policy's propensities are exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from marketpilot.simulate.policy import sample_distinct
from marketpilot.simulate.randomness import Streams, hash_uniform


def test_order_prices_equal_the_sales_panel_price_of_that_day(out: Path) -> None:
    orders = pd.read_csv(out / "orders.csv")
    sales = pd.read_csv(out / "sales.csv")
    orders["date"] = orders.created_at.str[:10] + "T00:00:00Z"
    joined = orders.merge(sales.drop_duplicates(["listing_id", "date"]), on=["listing_id", "date"])
    assert len(joined) > 20
    assert (joined.unit_price_minor == joined.price_minor).all()


def test_listing_price_is_the_regular_price_on_the_last_day(out: Path) -> None:
    listings = pd.read_csv(out / "listings.csv").set_index("listing_id")
    sales = pd.read_csv(out / "sales.csv")
    last = sales[(sales.date == sales.date.max()) & (sales.promo == 0)].drop_duplicates("listing_id")
    assert len(last) > 20
    assert (listings.loc[last.listing_id, "price_minor"].to_numpy() == last.price_minor.to_numpy()).all()


def test_sample_distinct_draws_distinct_uniform_indices() -> None:
    rng = np.random.default_rng(0)
    n = np.array([10] * 20_000 + [3] * 100 + [0] * 10)
    draws = sample_distinct(rng, n, 4)
    full = draws[:20_000]
    assert all(len(set(row)) == 4 for row in full[:2_000])
    assert full.min() >= 0 and full.max() <= 9
    frequency = np.bincount(full.ravel(), minlength=10) / full.size
    np.testing.assert_allclose(frequency, 0.1, atol=0.01)  # every index equally likely: 4/10 per slate
    short = draws[20_000:20_100]
    assert (np.sort(short[:, :3], axis=1) == [0, 1, 2]).all() and (short[:, 3] == -1).all()
    assert (draws[20_100:] == -1).all()


def test_logged_propensities_are_exact_for_the_true_category_sizes(out: Path) -> None:
    truth = out / "ground_truth"
    impressions = pd.read_parquet(truth / "impressions.parquet")
    listings = pd.read_parquet(truth / "listings.parquet")
    categories = pd.read_csv(truth / "categories.csv")
    group_of_leaf = categories.top + "/" + categories.mid
    eligible = group_of_leaf.loc[listings.leaf_id[listings.shown]].value_counts()
    # Horvitz-Thompson: summing 1 / P(listing in slate) over a slate counts the whole category
    slate = impressions.groupby("request_id").listing_id.transform("size")
    weight = 1.0 / (slate * impressions.propensity)
    per_request = weight.groupby(impressions.request_id).sum()
    group = impressions.groupby("request_id").group.first()
    np.testing.assert_allclose(per_request.to_numpy(), eligible.loc[group].to_numpy(), rtol=1e-9)


def test_listings_with_equal_propensity_are_shown_equally_often(out: Path) -> None:
    impressions = pd.read_parquet(out / "ground_truth" / "impressions.parquet")
    group = impressions.groupby("group").request_id.nunique().idxmax()
    shown = impressions[impressions.group == group]
    requests = shown.request_id.nunique()
    top = shown[shown.propensity == shown.propensity.max()]
    counts = top.listing_id.value_counts()
    p_in = top.propensity.iloc[0] * shown.groupby("request_id").size().mode()[0]
    expected = requests * p_in
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected * (1 - p_in)) + 1


def test_hash_uniform_is_a_pure_function_of_its_keys() -> None:
    salt = Streams(5).salt("prices")
    keys = np.arange(100_000)
    a = hash_uniform(salt, 1, keys)
    assert np.array_equal(a, hash_uniform(salt, 1, keys))
    assert not np.array_equal(a, hash_uniform(salt, 2, keys))
    assert not np.array_equal(a, hash_uniform(Streams(6).salt("prices"), 1, keys))
    assert 0 <= a.min() and a.max() < 1 and abs(a.mean() - 0.5) < 0.01
