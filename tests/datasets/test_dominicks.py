import re
from datetime import UTC, datetime

import numpy as np
import pytest

from marketpilot.datasets import DatasetNotInstalled, dominicks


@pytest.fixture(scope="module")
def data() -> dominicks.DominicksOJ:
    return dominicks.load()


def test_dominicks_yx_has_106139_rows_of_83_stores_11_brands_weeks_40_to_160(data):
    yx = data.yx
    assert yx.shape == (106_139, 19)
    assert list(yx.columns[:5]) == ["store", "brand", "week", "logmove", "constant"]
    assert yx["store"].nunique() == 83
    assert data.n_brands == 11
    assert (yx["week"].min(), yx["week"].max()) == (40, 160)
    assert not yx.duplicated(["store", "brand", "week"]).any()
    assert len(data.storedemo) == 83


def test_dominicks_week_starts_are_thursdays_from_1989_09_14():
    starts = dominicks.week_start(np.array([1, 40, 160]))
    assert list(starts) == [datetime(1989, 9, 14, tzinfo=UTC), datetime(1990, 6, 14, tzinfo=UTC),
                            datetime(1992, 10, 1, tzinfo=UTC)]
    assert {d.isoweekday() for d in starts} == {4}


def test_dominicks_converts_to_the_sales_schema(data, follows_schema):
    sales = dominicks.to_sales(data)
    follows_schema(sales, "sales")
    assert len(sales) == 106_139
    assert not sales.duplicated(["listing_id", "region", "date"]).any()
    assert sales["listing_id"].nunique() == 11 and sales["region"].nunique() == 83
    np.testing.assert_allclose(sales["quantity"], np.exp(data.yx["logmove"]), rtol=1e-3)
    first = data.yx.iloc[0]
    own = first[f"price{int(first['brand'])}"]
    assert sales["price_minor"].iloc[0] == round(own * 64 * 100)
    assert sales["promo"].iloc[0] == int(first["deal"] == 1 or first["feat"] > 0)


def test_dominicks_missing_file_says_what_to_run(tmp_path):
    with pytest.raises(DatasetNotInstalled) as err:
        dominicks.load(tmp_path / "orangeJuice.rda")
    assert "python -m marketpilot.datasets.install_debian" in str(err.value)
    assert "make datasets" in str(err.value)


def test_dominicks_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETPILOT_DATASETS_DIR", str(tmp_path))
    with pytest.raises(DatasetNotInstalled, match=re.escape(str(tmp_path))):
        dominicks.load()
