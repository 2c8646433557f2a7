"""From import-schema tables to what the pipeline fits on: a catalogue covering every listing
and user (listings nobody has touched yet included, so they can be served from day one), the
interactions over it, and the side information (listing text, seller, user region; category
path and user segment for the ranker) in catalogue order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from marketpilot.recommend.evaluation.metrics import ranking_metrics
from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.model import Catalog
from marketpilot.recommend.pipeline import PipelineConfig, TwoStagePipeline
from marketpilot.recommend.retrievers.content import listing_texts


def build_catalog(interactions: pd.DataFrame, listings: pd.DataFrame | None, users: pd.DataFrame | None) -> Catalog:
    items = set(interactions["listing_id"].astype(str))
    people = set(interactions["user_id"].astype(str))
    if listings is not None:
        items |= set(listings["listing_id"].astype(str))
    if users is not None:
        people |= set(users["user_id"].astype(str))
    return Catalog.build(sorted(items), sorted(people))


def side_information(
    catalog: Catalog, listings: pd.DataFrame | None, users: pd.DataFrame | None,
) -> tuple[list[str] | None, np.ndarray | None, list[str | None] | None]:
    """(texts, seller codes, regions) in catalogue order; None where the table is missing."""
    texts = sellers = regions = None
    if listings is not None and len(listings):
        aligned = listings.assign(listing_id=listings["listing_id"].astype(str)).drop_duplicates("listing_id")
        aligned = aligned.set_index("listing_id").reindex(list(catalog.listing_ids))
        texts = listing_texts(aligned.reset_index(drop=True))
        if "seller_id" in aligned:
            codes = pd.Categorical(aligned["seller_id"].astype("string"))
            sellers = np.asarray(codes.codes, np.int64)
    if users is not None and "region" in users and len(users):
        region_of = dict(zip(users["user_id"].astype(str), users["region"], strict=True))
        regions = [region_of.get(str(u)) for u in catalog.user_ids]
    return texts, sellers, regions


def ranker_side_information(
    catalog: Catalog, listings: pd.DataFrame | None, users: pd.DataFrame | None,
) -> tuple[list[str | None] | None, list[str | None] | None]:
    """(category path per listing, segment per user) in catalogue order, for the ranker's
    side features (`side_features.py`); None where the table or the column is missing."""
    categories = segments = None
    if listings is not None and len(listings) and "category_path" in listings:
        aligned = listings.assign(listing_id=listings["listing_id"].astype(str)).drop_duplicates("listing_id")
        path_of = aligned.set_index("listing_id")["category_path"]
        categories = [None if pd.isna(v) else str(v) for v in path_of.reindex(list(catalog.listing_ids))]
    if users is not None and len(users) and "segment" in users:
        seg_of = dict(zip(users["user_id"].astype(str), users["segment"], strict=True))
        segments = [None if s is None or pd.isna(s) else str(s) for s in (seg_of.get(str(u)) for u in catalog.user_ids)]
    return categories, segments


def fit_pipeline(
    interactions: pd.DataFrame | Interactions,
    listings: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    config: object | None = None,
) -> TwoStagePipeline:
    """Fit the two-stage pipeline on import-schema frames (or ready `Interactions`)."""
    if isinstance(interactions, Interactions):
        data = interactions
    else:
        data = Interactions.from_frame(interactions, build_catalog(interactions, listings, users))
    texts, sellers, regions = side_information(data.catalog, listings, users)
    categories, segments = ranker_side_information(data.catalog, listings, users)
    cfg = config if isinstance(config, PipelineConfig) else None
    return TwoStagePipeline(cfg).fit(data, item_texts=texts, item_sellers=sellers, user_regions=regions,
                                     item_categories=categories, user_segments=segments)


def holdout_metrics(pipeline: TwoStagePipeline, history: pd.DataFrame, future: pd.DataFrame, k: int) -> dict[str, float]:
    """Top-k metrics of `pipeline` on the (user, listing) pairs of `future` that are not in
    the user's `history`, for users and listings the pipeline's catalogue knows."""
    catalog = pipeline.catalog
    past = Interactions.from_frame(history, catalog) if len(history) else None
    ahead = Interactions.from_frame(future, catalog)
    relevant = ahead.matrix(binary=True)
    seen = past.matrix(binary=True) if past is not None else sp.csr_matrix(relevant.shape, dtype=np.float32)
    relevant = (relevant - relevant.multiply(seen)).tocsr()
    relevant.eliminate_zeros()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(users) == 0:
        return {f"ndcg_at_{k}": float("nan"), f"recall_at_{k}": float("nan"), "users": 0.0}
    weighted = past.matrix() if past is not None else seen
    recent_all = past.histories() if past is not None else [np.empty(0, np.int64)] * catalog.n_users
    top = pipeline.recommend_batch(users, weighted[users], [recent_all[u] for u in users], k)
    m = ranking_metrics(top, relevant[users], k)
    return {f"ndcg_at_{k}": m.ndcg, f"recall_at_{k}": m.recall, "users": float(m.users)}
