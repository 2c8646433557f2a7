"""The recommendation service with a slate policy: exploration fills slots from the ranked
pool within budget and logs propensities; fairness lifts an under-exposed bucket; neither
ever serves an unavailable listing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from test_service import FixedScores, N, ids, rt, service  # noqa: F401 - the shared fixture

from marketpilot.platform.db import schema as t
from marketpilot.platform.events.outbox import row_to_event
from marketpilot.recommend.bandits import BudgetLimits, EpsilonGreedy, ExplorationBudget
from marketpilot.recommend.events import RecommendationServed
from marketpilot.recommend.fairness import ExposureTarget, FairnessPolicy
from marketpilot.recommend.service import RecommendationRequest, RecommendationService
from marketpilot.recommend.slate_policy import ExposureGroups, SlatePolicy, default_policy
from marketpilot.runtime import Runtime


def _served(runtime: Runtime, svc: RecommendationService) -> list[RecommendationServed]:
    svc.slates.flush()
    with runtime.db.read() as s:
        rows = s.scalars(select(t.OutboxEvent).where(t.OutboxEvent.type == RecommendationServed.TYPE)).all()
        return [row_to_event(r).payload() for r in rows]  # type: ignore[misc]


@pytest.fixture
def explore_svc(rt: Runtime) -> Iterator[RecommendationService]:  # noqa: F811
    policy = SlatePolicy(
        exploration=EpsilonGreedy(epsilon=1.0),
        budget=ExplorationBudget(default=BudgetLimits(max_explored_share=1.0)),
        pool=4,
        seed=7,
    )
    svc = service(rt, FixedScores(), slate_policy=policy)
    yield svc
    svc.close()


def test_explored_slots_come_from_the_pool_and_their_propensities_are_logged(rt: Runtime, explore_svc: RecommendationService) -> None:  # noqa: F811
    # A fresh anonymous session each time: the impressions cap would otherwise hide what was shown.
    slates = [explore_svc.recommend(RecommendationRequest(k=3, session_id=f"anon-{i}")) for i in range(20)]
    relevance = ["l11", "l10", "l09"]
    pool = {"l08", "l07", "l06", "l05"}
    for slate in slates:
        got = ids(slate)
        assert got[0] == relevance[0]  # the first slot is never explored
        assert set(got[1:]) <= pool and len(set(got)) == 3
    logged = _served(rt, explore_svc)
    assert len(logged) == 20
    for event in logged:
        assert event.session_class == "new/unknown"
        assert event.explored == [False, True, True]
        assert event.propensities == pytest.approx([1.0, 0.25, 0.25])  # epsilon / |pool|


def test_a_sold_out_listing_is_never_explored_into_a_slate(rt: Runtime, explore_svc: RecommendationService) -> None:  # noqa: F811
    rt.inventory.set_quantity("l07", 0)
    seen = {lid for i in range(30) for lid in ids(explore_svc.recommend(RecommendationRequest(k=3, session_id=f"a{i}")))}
    assert "l07" not in seen and {"l08", "l06", "l05", "l04"} & seen


def test_without_budget_the_slate_is_the_ranking_and_is_logged_as_certain(rt: Runtime) -> None:  # noqa: F811
    policy = SlatePolicy(exploration=EpsilonGreedy(1.0), budget=ExplorationBudget(default=BudgetLimits(0.0)), pool=4)
    svc = service(rt, FixedScores(), slate_policy=policy)
    try:
        assert ids(svc.recommend(RecommendationRequest(k=3, session_id="anon-1"))) == ["l11", "l10", "l09"]
        (event,) = _served(rt, svc)
        assert event.propensities == [1.0, 1.0, 1.0] and event.session_class == "new/unknown"
    finally:
        svc.close()


def test_fairness_lifts_an_under_exposed_bucket_within_the_relevance_bound(rt: Runtime) -> None:  # noqa: F811
    # FixedScores ranks l11, l10, l09, ...: the "home" listings (even numbers) take every other slot.
    def home_share(svc: RecommendationService) -> float:
        weights = 1 / np.log2(np.arange(4) + 2)
        total = home = 0.0
        for i in range(40):
            got = ids(svc.recommend(RecommendationRequest(k=4, session_id=f"anon-{i}")))
            is_home = np.array([int(x[1:]) % 2 == 0 for x in got])
            home += float(weights[: len(got)] @ is_home)
            total += float(weights[: len(got)].sum())
        return home / total

    plain = service(rt, FixedScores())
    fair_policy = SlatePolicy(
        groups=ExposureGroups(buckets=("home",)),
        fairness=FairnessPolicy((ExposureTarget("category:home", 0.7),), max_relevance_loss=0.2),
        pool=8,
    )
    fair = service(rt, FixedScores(), slate_policy=fair_policy)
    try:
        assert home_share(fair) > home_share(plain) + 0.1
        audit = {row["group"]: row for row in fair_policy.audit()}
        assert audit["category:home"]["exposure_share"] > 0.5
    finally:
        plain.close()
        fair.close()


def test_settings_build_the_policy_or_none(tmp_path: Path) -> None:
    assert default_policy("off", epsilon=0.1, max_explored_share=0.05, max_gmv_loss_per_day=1e9,
                          cold_start_share=0.0, max_relevance_loss=0.05) is None
    policy = default_policy("thompson", epsilon=0.1, max_explored_share=0.05, max_gmv_loss_per_day=1e9,
                            cold_start_share=0.2, max_relevance_loss=0.05)
    assert policy is not None and policy.fairness is not None and policy.exploration is not None
    with pytest.raises(ValueError, match="unknown exploration policy"):
        default_policy("greedy", epsilon=0.1, max_explored_share=0.05, max_gmv_loss_per_day=1e9,
                       cold_start_share=0.0, max_relevance_loss=0.05)


def test_the_runtime_builds_the_slate_policy_from_settings(tmp_path: Path) -> None:
    from marketpilot.platform.config import load_settings

    runtime = Runtime(load_settings(home=tmp_path, recommend_exploration="epsilon_greedy", recommend_cold_start_exposure=0.2))
    try:
        policy = runtime.recommendations.slate_policy
        assert policy is not None and isinstance(policy.exploration, EpsilonGreedy) and policy.fairness is not None
    finally:
        runtime.close()
    plain = Runtime(load_settings(home=tmp_path / "plain"))
    try:
        assert plain.recommendations.slate_policy is None
    finally:
        plain.close()


def test_the_exposure_audit_recomputes_group_exposure_from_the_logged_slates(rt: Runtime) -> None:  # noqa: F811
    from datetime import timedelta

    policy = SlatePolicy(
        groups=ExposureGroups(buckets=("home",)),
        fairness=FairnessPolicy((ExposureTarget("category:home", 0.6),), max_relevance_loss=0.3),
        pool=8,
    )
    svc = service(rt, FixedScores(), slate_policy=policy)
    try:
        for i in range(30):
            svc.recommend(RecommendationRequest(k=4, session_id=f"s{i}"))
        audit = svc.audit(timedelta(hours=1))
        assert audit.slates == 30 and not audit.truncated
        rows = {g.group: g for g in audit.groups}
        # Every listing was created just now: all of them are cold-start, the whole exposure.
        assert rows["cold_start"].exposure_share == pytest.approx(1.0) and rows["cold_start"].target is None
        home = rows["category:home"]
        assert home.target == 0.6 and home.listings > 0
        # The log says what the in-process ledger says (the same slates, the same weights).
        ledger = {row["group"]: row for row in policy.audit()}
        assert home.exposure_share == pytest.approx(ledger["category:home"]["exposure_share"], abs=0.05)
        assert svc.audit(timedelta(minutes=1)).slates == 30
    finally:
        svc.close()


def test_the_audit_reads_each_days_explored_share_off_the_log_and_checks_it_against_the_cap(rt: Runtime) -> None:  # noqa: F811
    from datetime import timedelta

    cap = 0.2
    policy = SlatePolicy(exploration=EpsilonGreedy(epsilon=1.0),
                         budget=ExplorationBudget(default=BudgetLimits(max_explored_share=cap)), pool=4, seed=3)
    svc = service(rt, FixedScores(), slate_policy=policy)
    try:
        for i in range(40):  # epsilon 1: every slot would be explored if the budget let it
            svc.recommend(RecommendationRequest(k=3, session_id=f"s{i}", device="web"))
        audit = svc.audit(timedelta(hours=1))
        logged = _served(rt, svc)
        assert len(audit.exploration) == 1
        day = audit.exploration[0]
        assert day.session_class == "new/web" and day.cap == cap
        assert day.slots == sum(len(e.items) for e in logged) == 120
        assert day.explored == sum(sum(e.explored or []) for e in logged)
        assert 0 < day.share <= cap and day.within is True
    finally:
        svc.close()


def test_clicks_naming_a_served_slate_reach_the_thompson_posterior_once_its_window_closes(rt: Runtime) -> None:  # noqa: F811
    from datetime import UTC, datetime

    from marketpilot.domain.entities import InteractionIn
    from marketpilot.recommend.bandits import ThompsonSampling

    now = [datetime.now(UTC).timestamp()]
    thompson = ThompsonSampling(0, prior=(1.0, 20.0))
    policy = SlatePolicy(exploration=thompson, budget=ExplorationBudget(default=BudgetLimits(max_explored_share=1.0)),
                         pool=4, seed=1)
    svc = service(rt, FixedScores(), slate_policy=policy, attribution_seconds=60.0, clock=lambda: now[0])
    try:
        first = svc.recommend(RecommendationRequest(k=3, session_id="s1"))
        shown = ids(first)
        clicked = shown[1]
        rt.interactions.ingest([
            InteractionIn(user_id="u1", listing_id=clicked, event="click", request_id=first.request_id,
                          timestamp=datetime.fromtimestamp(now[0], UTC)),
            InteractionIn(user_id="u1", listing_id=shown[2], event="view", request_id=first.request_id,
                          timestamp=datetime.fromtimestamp(now[0], UTC)),
        ])
        index = svc.availability.universe.index
        items = np.array([index[lid] for lid in shown])
        now[0] += 30  # inside the window: the click is attributed, nothing is learnt yet
        svc.recommend(RecommendationRequest(k=3, session_id="s2"))
        assert svc.feedback is not None and svc.feedback.rewarded == 1 and svc.feedback.closed == 0
        assert thompson.posterior(items)[0].tolist() == [1.0, 1.0, 1.0]
        now[0] += 31  # the first slate's window has passed: it closes, the second stays open
        svc.recommend(RecommendationRequest(k=3, session_id="s3"))
        assert svc.feedback.closed == 1
        alpha, beta = thompson.posterior(items)
        assert alpha.tolist() == [1.0, 2.0, 1.0]  # the click (a view is no reward)
        assert beta.tolist() == [21.0, 20.0, 21.0]  # shown and left: one failure each
    finally:
        svc.close()


def _click(rt: Runtime, slate: object, listing_id: str, at: float) -> None:  # noqa: F811
    from datetime import UTC, datetime

    from marketpilot.domain.entities import InteractionIn

    rt.interactions.ingest([InteractionIn(user_id="u1", listing_id=listing_id, event="click",
                                          request_id=slate.request_id,  # type: ignore[attr-defined]
                                          timestamp=datetime.fromtimestamp(at, UTC))])


def _settings_policy(exploration: str) -> SlatePolicy:
    policy = default_policy(exploration, epsilon=0.5, max_explored_share=1.0, max_gmv_loss_per_day=1e12,
                            cold_start_share=0.0, max_relevance_loss=0.05)
    assert policy is not None
    policy.pool, policy.seed = 4, 5
    return policy


def test_thompson_from_settings_keeps_one_posterior_per_session_class(rt: Runtime) -> None:  # noqa: F811
    from datetime import UTC, datetime

    from marketpilot.recommend.bandits import PerSessionClass, ThompsonSampling

    now = [datetime.now(UTC).timestamp()]
    policy = _settings_policy("thompson")
    assert isinstance(policy.exploration, PerSessionClass)
    svc = service(rt, FixedScores(), slate_policy=policy, attribution_seconds=60.0, clock=lambda: now[0])
    try:
        web = svc.recommend(RecommendationRequest(k=3, session_id="a", device="web"))
        svc.recommend(RecommendationRequest(k=3, session_id="b", device="app"))
        clicked = ids(web)[0]
        _click(rt, web, clicked, now[0])
        now[0] += 61
        svc.recommend(RecommendationRequest(k=3, session_id="c", device="web"))  # closes both
        item = np.array([svc.availability.universe.index[clicked]])
        web_policy, app_policy = (policy.exploration.policy_for(c) for c in ("new/web", "new/app"))
        assert isinstance(web_policy, ThompsonSampling) and isinstance(app_policy, ThompsonSampling)
        assert web_policy.posterior(item)[0].tolist() == [2.0]  # the web click, in the web posterior only
        assert app_policy.posterior(item)[0].tolist() == [1.0]
    finally:
        svc.close()


def test_linucb_from_settings_explores_on_listing_features_and_learns_from_clicks(rt: Runtime) -> None:  # noqa: F811
    from datetime import UTC, datetime

    from marketpilot.recommend.bandits import LinUCB, PerSessionClass

    now = [datetime.now(UTC).timestamp()]
    policy = _settings_policy("linucb")
    assert isinstance(policy.exploration, PerSessionClass)
    svc = service(rt, FixedScores(), slate_policy=policy, attribution_seconds=60.0, clock=lambda: now[0])
    try:
        slates = [svc.recommend(RecommendationRequest(k=3, session_id=f"s{i}", device="web")) for i in range(20)]
        logged = _served(rt, svc)
        assert any(any(e.explored or []) for e in logged)  # it explores
        assert all(len(e.propensities or []) == 3 for e in logged)
        linucb = policy.exploration.policy_for("new/web")
        assert isinstance(linucb, LinUCB) and not linucb.theta().any()
        for i, slate in enumerate(slates):  # distinct times: the same click twice is one interaction
            _click(rt, slate, ids(slate)[1], now[0] + i / 1000)
        now[0] += 61
        svc.recommend(RecommendationRequest(k=3, session_id="late", device="web"))
        assert svc.feedback is not None and svc.feedback.closed == 20 and svc.feedback.rewarded == 20
        assert linucb.theta().any()  # learnt from the clicks, on the listings' features
    finally:
        svc.close()


def test_small_sellers_are_a_group_by_their_catalogue_size_kept_current_from_events(rt: Runtime) -> None:  # noqa: F811
    from marketpilot.domain.entities import ListingIn, SellerIn

    svc = service(rt, FixedScores())
    try:
        svc.availability.ensure_loaded()
        groups = ExposureGroups(small_seller_max_listings=N + 1)
        column = groups.names.index("small_seller")
        u = svc.availability.universe
        items = np.array([u.index["l00"], u.index["l01"]])
        assert groups.membership(u, items, now=0.0)[:, column].all()  # s1 has N listings
        rt.sellers.create(SellerIn(id="s2", name="Newcomer"))
        for lid in ("extra-1", "extra-2"):  # s1 grows past the bound; s2 starts small
            rt.listings.create(ListingIn(id=lid, seller_id="s1", title="More", category_path="home",
                                         price_minor=100, currency="EUR", quantity=1))
        rt.listings.create(ListingIn(id="n1", seller_id="s2", title="First", category_path="home",
                                     price_minor=100, currency="EUR", quantity=1))
        svc.recommend(RecommendationRequest(k=3, session_id="s"))  # folds the new events in
        u = svc.availability.universe
        items = np.array([u.index["l00"], u.index["n1"]])
        assert u.seller_listings(items).tolist() == [N + 2, 1]
        assert groups.membership(u, items, now=0.0)[:, column].tolist() == [False, True]
    finally:
        svc.close()


def test_settings_set_a_small_seller_exposure_target(tmp_path: Path) -> None:
    from marketpilot.platform.config import load_settings

    runtime = Runtime(load_settings(home=tmp_path, recommend_small_seller_exposure=0.3,
                                    recommend_small_seller_max_listings=5))
    try:
        policy = runtime.recommendations.slate_policy
        assert policy is not None and policy.fairness is not None and policy.exploration is None
        assert [(t.group, t.share) for t in policy.fairness.targets] == [("small_seller", 0.3)]
        assert policy.groups.small_seller_max_listings == 5
    finally:
        runtime.close()
