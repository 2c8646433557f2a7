"""The request path: validation, the model path, the availability guard, history from the
online store, and the `RecommendationServed` log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from marketpilot.domain.entities import ListingIn, SellerIn, UserIn
from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.events.outbox import row_to_event
from marketpilot.platform.features.catalog import recent_items_view
from marketpilot.recommend.availability import Filters
from marketpilot.recommend.events import RecommendationServed
from marketpilot.recommend.model import BoolArray, Candidates, Catalog, Query
from marketpilot.recommend.service import (
    LoadedModel,
    RecommendationRequest,
    RecommendationService,
    Strategy,
    load_champion,
)
from marketpilot.runtime import Runtime

N = 12


class FixedScores:
    """A trained-model stand-in: fixed scores over its own catalogue, which lists the
    listings in reverse and knows one listing the database does not."""

    name = "fixed"

    def __init__(self, ignore_mask: bool = False) -> None:
        ids = [f"l{i:02d}" for i in reversed(range(N))] + ["ghost"]
        self.catalog = Catalog.build(ids, ["u1"])
        self.scores = np.linspace(1.0, 0.0, len(ids), dtype=np.float32)  # catalogue order = rank
        self.ignore_mask = ignore_mask
        self.queries: list[Query] = []

    def recommend(self, query: Query, allowed: BoolArray | None = None) -> Candidates:
        self.queries.append(query)
        ok = np.ones(len(self.scores), dtype=np.bool_)
        if allowed is not None and not self.ignore_mask:
            ok &= allowed
        ok[query.history] = False
        items = np.flatnonzero(ok)[: query.k].astype(np.int64)
        return Candidates(items, self.scores[items])

    def similar(self, item: int, k: int, allowed: BoolArray | None = None) -> Candidates:
        ok = np.ones(len(self.scores), dtype=np.bool_) if allowed is None else allowed.copy()
        ok[item] = False
        items = np.flatnonzero(ok)[:k].astype(np.int64)
        return Candidates(items, self.scores[items])


@pytest.fixture
def rt(sqlite_db: Database, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(database_url=sqlite_db.url, home=tmp_path / "home"), migrate=False)
    runtime.sellers.create(SellerIn(id="s1", name="Shop"))
    for i in range(N):
        runtime.listings.create(
            ListingIn(
                id=f"l{i:02d}", seller_id="s1", title=f"Item {i}", category_path="fashion" if i % 2 else "home",
                price_minor=100 * (i + 1), currency="EUR", quantity=1,
            )
        )
    runtime.users.create(UserIn(id="u1", region="eu"))
    yield runtime
    runtime.close()


def service(rt: Runtime, model: FixedScores | None = None, **kwargs: object) -> RecommendationService:
    loaded = None if model is None else LoadedModel(model, {"recommend": "7"})
    return RecommendationService(
        rt.db, rt.source, features=rt.features, model_loader=lambda: loaded, **kwargs  # type: ignore[arg-type]
    )


def ids(slate: object) -> list[str]:
    return [i.listing_id for i in slate.items]  # type: ignore[attr-defined]


def served_events(db: Database) -> list[RecommendationServed]:
    with db.read() as s:
        rows = s.scalars(select(t.OutboxEvent).where(t.OutboxEvent.type == RecommendationServed.TYPE))
        return [row_to_event(r).payload() for r in rows.all()]  # type: ignore[misc]


def test_model_slate_is_ranked_by_the_model_and_reports_its_versions(rt: Runtime) -> None:
    svc = service(rt, FixedScores())
    slate = svc.recommend(RecommendationRequest(k=3, user_id="u1", region="eu"))
    assert slate.strategy == Strategy.MODEL
    assert ids(slate) == ["l11", "l10", "l09"]
    assert [i.position for i in slate.items] == [0, 1, 2]
    assert slate.items[0].score > slate.items[1].score > slate.items[2].score
    assert slate.model_versions == {"recommend": "7"}
    assert len(slate.request_id) == 32


def test_model_gets_the_user_index_context_and_a_mask_over_its_own_catalogue(rt: Runtime) -> None:
    model = FixedScores()
    svc = service(rt, model)
    rt.inventory.set_quantity("l11", 0)
    svc.recommend(RecommendationRequest(k=2, user_id="u1", region="eu", device="mobile", seed_listing_id="l05"))
    query = model.queries[-1]
    assert (query.user, query.region, query.device) == (0, "eu", "mobile")
    assert model.catalog.listing_ids[query.seed_item] == "l05"


def test_sold_out_and_ghost_listings_are_not_served_by_the_model(rt: Runtime) -> None:
    svc = service(rt, FixedScores())
    svc.recommend(RecommendationRequest(k=N, user_id="u1"))
    rt.inventory.set_quantity("l11", 0)
    slate = svc.recommend(RecommendationRequest(k=N + 1, session_id="other"))
    assert "l11" not in ids(slate) and "ghost" not in ids(slate)


def test_guard_drops_items_a_model_returns_against_the_mask_and_counts_them(rt: Runtime) -> None:
    svc = service(rt, FixedScores(ignore_mask=True))
    rt.inventory.set_quantity("l11", 0)
    slate = svc.recommend(RecommendationRequest(k=3, user_id="u1"))
    assert ids(slate) == ["l10", "l09"]  # l11 and the rest of the model's top 3 dropped
    assert svc.metrics.dropped._value.get() == 1


def test_filters_reach_the_model_through_the_mask(rt: Runtime) -> None:
    svc = service(rt, FixedScores())
    slate = svc.recommend(
        RecommendationRequest(k=10, user_id="u1", filters=Filters(category="fashion", max_price=600))
    )
    assert ids(slate) == ["l05", "l03", "l01"]


def test_recent_items_from_the_feature_store_are_history_and_not_served_again(rt: Runtime) -> None:
    model = FixedScores()
    svc = service(rt, model)
    rt.features.write(
        recent_items_view(), ["u1"],
        {"recent_items": [["l10", "l11"]], "recent_times": [[2000, 1000]], "interactions": [2]},
        event_time=2000,
    )
    slate = svc.recommend(RecommendationRequest(k=2, user_id="u1"))
    assert ids(slate) == ["l09", "l08"]
    history = model.catalog.listing_ids[model.queries[-1].history].tolist()
    assert history == ["l11", "l10"]  # most recent last
    assert slate.feature_snapshot_id.endswith("-h2000")


def test_seed_listing_is_not_recommended_to_itself_and_must_exist(rt: Runtime) -> None:
    svc = service(rt, FixedScores())
    assert "l11" not in ids(svc.recommend(RecommendationRequest(k=3, user_id="u1", seed_listing_id="l11")))
    with pytest.raises(NotFound, match="seed listing 'nope' not found"):
        svc.recommend(RecommendationRequest(k=3, user_id="u1", seed_listing_id="nope"))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RecommendationRequest(k=0, user_id="u1"), "k must be between 1 and 100, got 0"),
        (RecommendationRequest(k=101, user_id="u1"), "k must be between 1 and 100, got 101"),
        (RecommendationRequest(k=5), "give a user_id or an anonymous session_id"),
        (
            RecommendationRequest(k=5, user_id="u1", filters=Filters(min_price=10, max_price=5)),
            "min_price 10 is above max_price 5",
        ),
        (RecommendationRequest(k=5, user_id="u1", hour=24), "hour must be between 0 and 23, got 24"),
    ],
)
def test_bad_requests_are_rejected_with_a_clear_message(
    rt: Runtime, request_: RecommendationRequest, message: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^{message}$"):
        service(rt).recommend(request_)


def test_every_slate_is_logged_as_a_recommendation_served_event(rt: Runtime) -> None:
    svc = service(rt, FixedScores())
    a = svc.recommend(RecommendationRequest(k=3, user_id="u1", region="eu", page="home"))
    b = svc.recommend(RecommendationRequest(k=2, session_id="anon-1"))
    svc.slates.flush()
    events = {e.request_id: e for e in served_events(rt.db)}
    assert set(events) == {a.request_id, b.request_id}
    logged = events[a.request_id]
    assert logged.items == ids(a) and logged.positions == [0, 1, 2]
    assert logged.scores == pytest.approx([i.score for i in a.items])
    assert (logged.strategy, logged.model_versions) == ("model", {"recommend": "7"})
    assert (logged.user_id, logged.region, logged.page) == ("u1", "eu", "home")
    assert logged.feature_snapshot_id == a.feature_snapshot_id
    assert events[b.request_id].session_id == "anon-1"


def test_slates_are_written_in_the_background_without_an_explicit_flush(rt: Runtime) -> None:
    svc = service(rt, slate_log=None)
    svc.slates.flush_interval = 0.01
    slate = svc.recommend(RecommendationRequest(k=2, user_id="u1"))
    svc.close()  # stops the writer, which has flushed everything
    assert [e.request_id for e in served_events(rt.db)] == [slate.request_id]


def test_similar_uses_the_model_and_never_returns_the_listing_itself(rt: Runtime) -> None:
    svc = service(rt, FixedScores())
    slate = svc.similar("l11", 3)
    assert slate.strategy == Strategy.MODEL
    assert ids(slate) == ["l10", "l09", "l08"]
    with pytest.raises(NotFound, match="listing 'nope' not found"):
        svc.similar("nope", 3)
    with pytest.raises(InvalidInput, match="k must be between 1 and 100, got 0"):
        svc.similar("l11", 0)


def test_no_registered_champion_means_no_model(rt: Runtime) -> None:
    assert load_champion(rt.settings) is None
    slate = rt.recommendations.recommend(RecommendationRequest(k=2, user_id="u1"))
    assert slate.strategy == Strategy.MODEL_UNAVAILABLE
