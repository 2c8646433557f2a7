"""Shadow replay: logged requests are ranked by a candidate through the production mask,
nothing is served or logged, and the comparison and IPS value are what the logs imply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from test_service import FixedScores, rt, service  # noqa: F401 - the shared fixture

from marketpilot.domain.entities import InteractionIn
from marketpilot.platform.db import schema as t
from marketpilot.recommend.events import RecommendationServed
from marketpilot.recommend.replay import shadow_replay
from marketpilot.recommend.service import LoadedModel, RecommendationRequest
from marketpilot.runtime import Runtime


class Reversed(FixedScores):
    """A candidate that ranks the catalogue the other way round."""

    def __init__(self) -> None:
        super().__init__()
        self.scores = self.scores[::-1].copy()

    def recommend(self, query, allowed=None):  # type: ignore[no-untyped-def]
        ok = np.ones(len(self.scores), dtype=np.bool_) if allowed is None else allowed.copy()
        order = [i for i in np.argsort(-self.scores) if ok[i]][: query.k]
        items = np.asarray(order, dtype=np.int64)
        from marketpilot.recommend.model import Candidates

        return Candidates(items, self.scores[items])


def _logged_count(runtime: Runtime) -> int:
    with runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(t.OutboxEvent).where(t.OutboxEvent.type == RecommendationServed.TYPE)) or 0)


def test_replaying_the_production_model_agrees_with_the_log_and_serves_nothing(rt: Runtime) -> None:  # noqa: F811
    svc = service(rt, FixedScores())
    try:
        slates = [svc.recommend(RecommendationRequest(k=3, session_id=f"b{i}")) for i in range(10)]
        # Buyers click the second listing of the first four slates.
        now = datetime.now(UTC)
        rt.interactions.ingest([
            InteractionIn(user_id=f"b{i}", listing_id=s.items[1].listing_id, event="click", timestamp=now,
                          request_id=s.request_id, position=1)
            for i, s in enumerate(slates[:4])
        ])
        svc.slates.flush()
        before = _logged_count(rt)

        same = shadow_replay(svc, LoadedModel(FixedScores(), {"recommend": "cand"}), window=timedelta(hours=1))
        assert _logged_count(rt) == before  # shadow: nothing served, nothing logged
        assert (same.slates, same.replayed, same.failed) == (10, 10, 0)
        assert same.mean_overlap_at_k == 1.0 and same.same_top_share == 1.0
        assert same.rounds == 30 and same.matched_rounds == 30
        assert same.logged_value == pytest.approx(4 / 30)
        assert same.candidate_ips is not None and same.candidate_ips.estimate == pytest.approx(4 / 30)
        assert same.candidate_ips.low <= 4 / 30 <= same.candidate_ips.high

        other = shadow_replay(svc, LoadedModel(Reversed(), {"recommend": "rev"}), window=timedelta(hours=1))
        assert other.replayed == 10 and other.mean_overlap_at_k == 0.0 and other.matched_rounds == 0
        assert other.candidate_ips is not None and other.candidate_ips.estimate == 0.0
        assert other.candidate_snips is None  # no round matched: self-normalised IPS is undefined
    finally:
        svc.close()
