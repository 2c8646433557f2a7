"""Listing text carries the latent factors, so content-based cold start can work on this data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd


def _one_hot(texts: pd.Series) -> np.ndarray:
    tokens = [re.findall(r"[a-z0-9\-]+", t.lower()) for t in texts]
    vocabulary = {w: i for i, w in enumerate(sorted({w for ts in tokens for w in ts}))}
    x = np.zeros((len(texts), len(vocabulary)))
    for row, ts in enumerate(tokens):
        x[row, [vocabulary[w] for w in ts]] = 1.0
    return x


def _ridge_cosine(x: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    """Fit text -> factors on `train`, return the mean cosine of predictions on the rest."""
    w = np.linalg.solve(x[train].T @ x[train] + np.eye(x.shape[1]), x[train].T @ y[train])
    predicted = x[~train] @ w
    cosine = (predicted * y[~train]).sum(axis=1) / np.linalg.norm(predicted, axis=1)
    return float(cosine.mean())


def test_titles_predict_the_factors_of_cold_start_listings(out: Path) -> None:
    listings = pd.read_csv(out / "listings.csv")
    warm = ~pd.read_parquet(out / "ground_truth" / "listings.parquet").cold_start.to_numpy()
    factors = np.load(out / "ground_truth" / "item_factors.npy")
    from_title = _ridge_cosine(_one_hot(listings.title), factors, warm)
    from_category = _ridge_cosine(_one_hot(listings.category_path.str.replace("/", " ")), factors, warm)
    assert from_title > 0.85
    assert from_title > from_category + 0.1  # the words beyond the category carry taste too


def test_attributes_repeat_what_the_title_says(out: Path) -> None:
    listings = pd.read_csv(out / "listings.csv").head(500)
    for title, attributes in zip(listings.title, listings.attributes, strict=True):
        attrs = json.loads(attributes)
        assert set(attrs) in ({"brand", "condition", "colour"}, {"brand", "condition", "colour", "size"})
        assert title.startswith(attrs["brand"] + " ") and attrs["colour"] in title
        assert ("size" in attrs) == (", size " in title)
