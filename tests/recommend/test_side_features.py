"""Ranker side features: category affinity, segment popularity, interaction-time gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.model import Catalog
from marketpilot.recommend.side_features import NAMES, SideFeatures, category_codes, segment_codes


def _data() -> Interactions:
    catalog = Catalog.build([f"i{k}" for k in range(4)], ["a", "b", "c"])
    frame = pd.DataFrame({
        "user_id": ["a", "a", "b", "b", "c"],
        "listing_id": ["i0", "i1", "i0", "i2", "i2"],
        "event": "purchase",
        "timestamp": [0, 86_400, 2 * 86_400, 4 * 86_400, 10 * 86_400],
    })
    return Interactions.from_frame(frame, catalog)


def test_category_codes_share_prefixes() -> None:
    codes = category_codes(["a/b/c", "a/b/d", "a/x", None])
    assert codes is not None and codes.shape == (3, 4)
    assert codes[0, 0] == codes[0, 1] == codes[0, 2] and codes[0, 3] == -1
    assert codes[1, 0] == codes[1, 1] != codes[1, 2]
    assert codes[2, 0] != codes[2, 1]
    assert category_codes(None) is None


def test_features_from_history_and_segment() -> None:
    data = _data()
    segments, _ = segment_codes(["s1", "s1", None])
    side = SideFeatures(category_codes(["m/x", "m/x", "m/y", "m/y"]), segments).fit(data)
    history = data.matrix()[[0, 2]]
    rows, items = np.array([0, 0, 1]), np.array([2, 3, 0])
    cols, names = side.features(np.array([0, 2]), history, rows, items)
    assert tuple(names) == NAMES
    f = dict(zip(names, cols, strict=True))
    assert f["cat1_aff"][0] == 1.0 and f["cat2_aff"][0] == 0.0  # user a: both listings in m/x
    assert f["cat2_aff"][2] == 0.0 and f["cat2_aff"][1] == 0.0
    assert f["seg_share"][0] == 0.5  # one of the two s1 users has i2
    assert np.isnan(f["seg_share"][2])  # user c has no segment
    assert np.isnan(f["time_med_gap"][1])  # nobody has i3
    assert np.isfinite(f["time_med_gap"][0])


def test_unknown_listings_and_round_trip() -> None:
    data = _data()
    side = SideFeatures(category_codes(["m/x"] * 4), segment_codes(["s", "s", "s"])[0]).fit(data)
    history = sp.csr_matrix((np.ones(1), ([0], [0])), shape=(1, 6))  # catalogue grew after the fit
    cols, _ = side.features(np.array([0]), history, np.array([0, 0]), np.array([1, 5]))
    assert all(np.isnan(c[1]) for c in cols)
    again = SideFeatures.from_state(side.state())
    cols2, _ = again.features(np.array([0]), history, np.array([0, 0]), np.array([1, 5]))
    for a, b in zip(cols, cols2, strict=True):
        np.testing.assert_array_equal(a, b)
    empty, _ = SideFeatures().features(np.array([0]), history, np.array([0]), np.array([1]))
    assert all(np.isnan(c).all() for c in empty)
