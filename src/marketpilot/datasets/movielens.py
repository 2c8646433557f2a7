"""MovieLens-100K, as shipped in PyPI ``recbole==1.2.1`` (``recbole/dataset_example/ml-100k``).

100,000 ratings (1–5) by 943 users of 1,682 films, September 1997 – April 1998. RecBole's
atomic files are tab-separated with typed headers (``user_id:token`` ...); the loader strips
the type suffixes.

Mapping to the import schema:
- interactions: ``event = "rating"``, ``value`` = the rating, ``timestamp`` from Unix seconds.
- listings: ``seller_id = "movielens"`` (one synthetic seller); ``title`` without RecBole's
  leftovers; ``category_path = "movies/<first genre>/<decade>"`` (``movies/<first genre>``
  when the year is unknown; genres are listed alphabetically, as in the source);
  ``attributes`` = ``{"genres": [...], "year": ...}``. MovieLens has no prices:
  ``price_minor = 0``, ``currency = "USD"`` are placeholders, not data.
- users: ``region`` from the postal code: ``US-<first ZIP digit>`` (the ten US ZIP national
  areas) or ``CA-<first letter>`` for the 18 Canadian postal codes; ``segment`` =
  ``"<age band>/<occupation>"`` with bands ``<18, 18-24, 25-34, 35-44, 45-54, 55+``.
  Gender is kept in ``raw_users`` only.
Source fixes: item 267's title/year read ``unkonwn`` (typo) → ``unknown``/no year; item
1412's year is ``V`` (a split title) → the year in the title's trailing ``(YYYY)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from marketpilot.datasets._package import PackageSource, locate
from marketpilot.datasets._schema import conform

__all__ = ["SOURCE", "MovieLens100K", "check_installed", "load", "read_raw", "to_interactions", "to_listings",
           "to_users"]

SOURCE = PackageSource("movielens-100k", "recbole", "recbole==1.2.1", "dataset_example/ml-100k")
FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
SELLER_ID = "movielens"
_AGE_BANDS = ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"))


@dataclass(frozen=True)
class MovieLens100K:
    """Import-schema frames plus the raw RecBole tables (type suffixes stripped)."""

    interactions: pd.DataFrame  # schema "interactions"
    listings: pd.DataFrame  # schema "listings"
    users: pd.DataFrame  # schema "users"
    raw_ratings: pd.DataFrame  # user_id, item_id, rating, timestamp (int64 Unix seconds)
    raw_items: pd.DataFrame  # item_id, title, year (Int64), genres (list[str])
    raw_users: pd.DataFrame  # user_id, age, gender, occupation, zip_code


def _read_atomic(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False,
                        quoting=3, engine="c")
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def _clean_items(items: pd.DataFrame) -> pd.DataFrame:
    titles, years = [], []
    for title, year in zip(items["movie_title"], items["release_year"], strict=True):
        title = "unknown" if title == "unkonwn" else title
        y: int | None = int(year) if re.fullmatch(r"\d{4}", year) else None
        m = re.search(r"\s*\((\d{4})\)$", title)
        if m:
            y = y if y is not None else int(m.group(1))
            title = title[: m.start()]
        titles.append(title)
        years.append(y)
    return pd.DataFrame({
        "item_id": items["item_id"].astype("int64"),
        "title": titles,
        "year": pd.array(years, dtype="Int64"),
        "genres": [g.split() for g in items["class"]],
    })


def check_installed(source: PackageSource = SOURCE) -> Path:
    """The ml-100k directory; raises DatasetNotInstalled when recbole (or a file) is missing."""
    return locate(source, *FILES)


def read_raw(source: PackageSource = SOURCE) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three RecBole tables: ratings, items, users (typed, cleaned as in the module doc)."""
    base = check_installed(source)
    inter = _read_atomic(base / FILES[0])
    ratings = pd.DataFrame({
        "user_id": inter["user_id"].astype("int64"),
        "item_id": inter["item_id"].astype("int64"),
        "rating": inter["rating"].astype("float64"),
        "timestamp": inter["timestamp"].astype("float64").astype("int64"),
    })
    items = _clean_items(_read_atomic(base / FILES[1]))
    users = _read_atomic(base / FILES[2])
    users = users.assign(user_id=users["user_id"].astype("int64"), age=users["age"].astype("int64"))
    return ratings, items, users


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("'", "")).strip("-")


def _region(zip_code: str) -> str:
    z = zip_code.strip().upper()
    if z[:1].isdigit():
        return f"US-{z[0]}"
    if z[:1].isalpha():
        return f"CA-{z[0]}"
    return "unknown"


def _age_band(age: int) -> str:
    for upper, label in _AGE_BANDS:
        if age < upper:
            return label
    return "55+"


def to_interactions(ratings: pd.DataFrame) -> pd.DataFrame:
    return conform("interactions", {
        "user_id": ratings["user_id"].astype(str),
        "listing_id": ratings["item_id"].astype(str),
        "event": "rating",
        "value": ratings["rating"],
        "timestamp": ratings["timestamp"].to_numpy(np.int64),
    })


def to_listings(items: pd.DataFrame) -> pd.DataFrame:
    paths, attributes = [], []
    for genres, year in zip(items["genres"], items["year"], strict=True):
        path = f"movies/{_slug(genres[0]) if genres else 'unknown'}"
        if not pd.isna(year):
            path += f"/{int(year) // 10 * 10}s"
        paths.append(path)
        attributes.append(json.dumps(
            {"genres": list(genres), "year": None if pd.isna(year) else int(year)}, ensure_ascii=False))
    return conform("listings", {
        "listing_id": items["item_id"].astype(str),
        "seller_id": SELLER_ID,
        "title": items["title"],
        "category_path": paths,
        "attributes": attributes,
        "price_minor": 0,
        "currency": "USD",
        "status": "active",
    })


def to_users(users: pd.DataFrame) -> pd.DataFrame:
    return conform("users", {
        "user_id": users["user_id"].astype(str),
        "region": [_region(z) for z in users["zip_code"]],
        "segment": [f"{_age_band(int(a))}/{o}" for a, o in zip(users["age"], users["occupation"], strict=True)],
    })


def load(source: PackageSource = SOURCE) -> MovieLens100K:
    ratings, items, users = read_raw(source)
    return MovieLens100K(
        interactions=to_interactions(ratings),
        listings=to_listings(items),
        users=to_users(users),
        raw_ratings=ratings,
        raw_items=items,
        raw_users=users,
    )
