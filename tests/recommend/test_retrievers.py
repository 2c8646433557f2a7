"""Every retriever must recover the planted taste groups, survive a state round trip
unchanged, and score users it has never seen from their history alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.retrievers.als import ALS
from marketpilot.recommend.retrievers.base import Batch, Retriever
from marketpilot.recommend.retrievers.content import ContentEmbedding, listing_text, listing_texts
from marketpilot.recommend.retrievers.cooccurrence import CoOccurrence
from marketpilot.recommend.retrievers.ease import EASE
from marketpilot.recommend.retrievers.sequence import SessionSequence
from marketpilot.recommend.retrievers.timeline import TimelineNeighbours

sys.path.insert(0, str(Path(__file__).parent))
from planted import GROUPS, group_of, planted  # noqa: E402


@pytest.fixture(scope="module")
def planted_data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return planted()


def _fitted(kind: str, data: Interactions, listings: pd.DataFrame) -> Retriever:
    if kind == "content":
        aligned = listings.set_index("listing_id").reindex(list(data.catalog.listing_ids)).reset_index()
        return ContentEmbedding(dim=8).fit_texts(listing_texts(aligned)).fit(data)
    return {"ease": lambda: EASE(50.0), "cooc": CoOccurrence, "als": lambda: ALS(factors=8, iterations=10),
            "seq": SessionSequence, "near": TimelineNeighbours}[kind]().fit(data)


KINDS = ("ease", "cooc", "als", "seq", "content", "near")


def _batch(data: Interactions, users: np.ndarray) -> Batch:
    hist = data.histories()
    return Batch(users, data.matrix()[users], [hist[u] for u in users])


@pytest.mark.parametrize("kind", KINDS)
def test_a_retriever_recommends_from_the_users_own_taste_group(kind: str, planted_data) -> None:
    frame, listings, _ = planted_data
    data = Interactions.from_frame(frame)
    retriever = _fitted(kind, data, listings)
    users = np.arange(data.catalog.n_users)
    scores = retriever.score(_batch(data, users))
    seen = data.matrix(binary=True).toarray() > 0
    scores[seen] = -np.inf
    best = scores.argmax(axis=1)
    same = [group_of(data.catalog.listing_ids[b]) == int(data.catalog.user_ids[u][1]) for u, b in zip(users, best, strict=True)]
    assert np.mean(same) > 0.8  # chance is 1 / GROUPS
    assert GROUPS == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_retriever_survives_a_state_round_trip(kind: str, planted_data) -> None:
    frame, listings, _ = planted_data
    data = Interactions.from_frame(frame)
    retriever = _fitted(kind, data, listings)
    copy = type(retriever).from_state(retriever.state(), retriever.params())
    batch = _batch(data, np.arange(10))
    assert np.allclose(retriever.score(batch), copy.score(batch))


def test_als_folds_in_a_user_it_has_never_seen() -> None:
    frame, _, _ = planted()
    data = Interactions.from_frame(frame)
    als = ALS(factors=8, iterations=10).fit(data)
    group1 = [data.catalog.item_index[f"i1_{i:02d}"] for i in range(4)]
    row = data.matrix()[:1].copy()
    row.data[:] = 0.0
    row = row.tolil()
    row[0, :] = 0
    for i in group1:
        row[0, i] = 8.0
    scores = als.score(Batch(np.array([-1]), row.tocsr()))[0]
    scores[group1] = -np.inf
    top = np.argsort(-scores)[:5]
    assert all(group_of(data.catalog.listing_ids[i]) == 1 for i in top)


def test_content_embeds_a_new_listing_next_to_its_kind() -> None:
    _, listings, _ = planted()
    content = ContentEmbedding(dim=8).fit_texts(listing_texts(listings))
    new = content.embed(["road bike carbon frame"])[0]
    nearest = int(np.argmax(content.item_vectors @ new))
    assert listings["listing_id"].iloc[nearest].startswith("i1_")


def test_a_listing_read_from_the_database_gets_the_text_it_was_trained_with() -> None:
    """The service embeds a late listing from its row (attributes a dict); training embeds the
    import frame (attributes as JSON): the same listing must give the same text."""
    frame = pd.DataFrame({"title": ["Red scarf"], "category_path": ["fashion/scarves"],
                          "attributes": ['{"colour": "red", "size": ["s", "m"], "brand": null}']})
    row = listing_text("Red scarf", "fashion/scarves", {"colour": "red", "size": ["s", "m"], "brand": None})
    assert listing_texts(frame) == [row] == ["Red scarf fashion scarves colour_red size_s size_m"]
    assert listing_text(None, None, "not json") == " "


def _timelines(histories: list[list[str]]) -> Interactions:
    rows = [(f"u{u}", item, "view", 1_700_000_000 + 60 * t)
            for u, items in enumerate(histories) for t, item in enumerate(items)]
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "listing_id", "event", "timestamp"]))


def test_timeline_neighbours_link_what_was_touched_close_together_not_just_in_one_history() -> None:
    # a and b always sit next to each other in time; a and z share every history too, but
    # far apart. Plain co-occurrence cannot tell them apart; the timeline retriever must.
    filler = [f"f{k}" for k in range(8)]
    data = _timelines([["a", "b", *filler, "z"], ["z", *filler, "b", "a"], ["b", "a", *filler, "z"]])
    near = TimelineNeighbours(window=2).fit(data)
    cooc = CoOccurrence().fit(data)
    idx = data.catalog.item_index
    user = Batch(np.array([-1]), sp.csr_matrix(([1.0], ([0], [idx["a"]])), shape=(1, data.catalog.n_items)))
    near_scores, cooc_scores = near.score(user)[0], cooc.score(user)[0]
    assert near_scores[idx["b"]] > 0
    assert near_scores[idx["z"]] == 0  # never within two steps of a
    assert cooc_scores[idx["z"]] == pytest.approx(cooc_scores[idx["b"]])


def test_timeline_neighbours_weigh_one_step_apart_above_two() -> None:
    data = _timelines([["a", "b", "c"], ["a", "b", "c"]])
    near = TimelineNeighbours(window=2, decay=0.5).fit(data)
    w = near.weights.toarray()
    idx = data.catalog.item_index
    assert w[idx["a"], idx["b"]] == pytest.approx(2 * w[idx["a"], idx["c"]])
    assert w[idx["a"], idx["b"]] == pytest.approx(w[idx["b"], idx["a"]])  # both directions


def test_timeline_neighbours_reject_bad_settings() -> None:
    for bad in ({"window": 0}, {"decay": 0.0}, {"decay": 1.5}, {"neighbours": 0}):
        with pytest.raises(ValueError, match="near"):
            TimelineNeighbours(**bad)
