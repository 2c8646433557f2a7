from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from fraud_data import Fitted
from sqlalchemy import select

from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.fraud.base import Action, FraudRequest, Strategy
from marketpilot.fraud.service import FraudService
from marketpilot.fraud.tables import FraudDecisionRow
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t


def served(db: Database, fitted: Fitted, upto: int) -> FraudService:
    """A service that has seen the first `upto` attempts of the history."""
    service = FraudService(db)
    service.install(fitted.model, "fraud/1")
    for r in fitted.requests[:upto]:
        service.state.observe(r)
    return service


def test_score_approves_buyers_and_stops_ring_attempts_with_reasons(sqlite_db: Database, fitted: Fitted) -> None:
    y = fitted.labels
    last_ring = int(np.flatnonzero(y == 1)[-1])
    service = served(sqlite_db, fitted, last_ring)
    decision = service.score(fitted.requests[last_ring])
    assert decision.action in (Action.REVIEW, Action.BLOCK)
    assert decision.strategy is Strategy.MODEL and decision.model_version == "fraud/1"
    assert decision.score >= decision.threshold == fitted.model.threshold_
    assert decision.reasons and all(r.contribution > 0 for r in decision.reasons)
    legit = [i for i in range(last_ring + 1, len(y)) if y[i] == 0][:50]
    actions = [service.score(fitted.requests[i]).action for i in legit]
    assert actions.count(Action.APPROVE) >= 45


def test_without_a_model_every_payment_goes_to_review_and_says_why(sqlite_db: Database, fitted: Fitted) -> None:
    service = FraudService(sqlite_db, model_loader=lambda: None)
    d = service.score(fitted.requests[0])
    assert d.action is Action.REVIEW and d.strategy is Strategy.FALLBACK
    assert d.fallback_reason is not None and "no fraud model" in d.fallback_reason
    assert math.isnan(d.score)


def test_a_failing_model_falls_back_to_the_isolation_forest(sqlite_db: Database, fitted: Fitted) -> None:
    service = served(sqlite_db, fitted, 10)
    broken = FraudServiceModelBreaker(fitted)
    service.install(broken, "fraud/2")  # type: ignore[arg-type]
    d = service.score(fitted.requests[10])
    assert d.strategy is Strategy.FALLBACK and d.model_version == "isolation_forest/2"
    assert "model failed" in (d.fallback_reason or "")
    assert d.threshold == fitted.model.fallback_threshold_
    assert d.action in (Action.APPROVE, Action.REVIEW, Action.BLOCK) and len(d.reasons) == 3


class FraudServiceModelBreaker:
    """The fitted model whose supervised part raises (a corrupt booster, say)."""

    def __init__(self, fitted: Fitted) -> None:
        self._m = fitted.model

    def explain_one(self, x: np.ndarray) -> tuple[float, np.ndarray, float]:
        raise RuntimeError("booster file is corrupt")

    def __getattr__(self, name: str) -> object:
        return getattr(self._m, name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount_minor": -5}, "must not be negative"),
        ({"currency": "XXX"}, "unknown currency"),
        ({"user_id": "bad id!"}, "user_id"),
        ({"device_id": " dev"}, "device_id"),
    ],
)
def test_bad_input_is_rejected(sqlite_db: Database, change: dict[str, object], message: str) -> None:
    base = {"transaction_id": "t1", "user_id": "u1", "amount_minor": 10, "currency": "EUR"}
    with pytest.raises(InvalidInput, match=message):
        FraudService(sqlite_db).score(FraudRequest(**{**base, **change}))  # type: ignore[arg-type]


def test_decisions_are_recorded_once_and_reviews_label_the_transaction(db: Database, fitted: Fitted) -> None:
    service = FraudService(db, model_loader=lambda: None)  # no model: everything is reviewed
    first = service.decide(fitted.requests[0])
    again = service.decide(fitted.requests[0])
    assert again.action is first.action and again.model_version == first.model_version
    with db.read() as s:
        assert len(list(s.scalars(select(FraudDecisionRow)))) == 1
        assert s.get(t.Transaction, fitted.requests[0].transaction_id) is not None
    service.decide(fitted.requests[1])
    queue = service.reviews(limit=1)
    assert len(queue.items) == 1 and queue.next_cursor is not None
    rest = service.reviews(limit=10, cursor=int(queue.next_cursor))
    assert [i.transaction_id for i in queue.items + rest.items] == [r.transaction_id for r in fitted.requests[:2]]
    item = service.review(queue.items[0].id, fraud=True, reviewer="analyst-1", note="chargeback")
    assert item.status == "closed" and item.label == 1
    with db.read() as s:
        assert s.get(t.Transaction, item.transaction_id).label == 1  # type: ignore[union-attr]
    assert [i.id for i in service.reviews().items] == [rest.items[0].id]
    with pytest.raises(Conflict):
        service.review(item.id, fraud=False, reviewer="analyst-2")
    with pytest.raises(NotFound):
        service.review(10_000, fraud=True, reviewer="analyst-1")


def test_prime_loads_history_reputation_and_labels(sqlite_db: Database, fitted: Fitted, tmp_path: Path) -> None:
    writer = FraudService(sqlite_db, model_loader=lambda: None)
    for r in fitted.requests[:20]:
        writer.decide(r)
    assert writer.import_reputation("ip", ["198.51.100.7", " 198.51.100.7 ", ""], source="feed") == 1
    assert writer.import_reputation("ip", ["198.51.100.7"]) == 0
    with pytest.raises(InvalidInput):
        writer.import_reputation("phone", ["1"])
    fresh = FraudService(sqlite_db)
    replayed = fresh.prime(now=fitted.requests[19].at(), window=__import__("datetime").timedelta(days=60))
    assert replayed == 20
    assert "198.51.100.7" in fresh.state.reputation["ip"]
    assert fresh.state.users[fitted.requests[0].user_id].n >= 1


def test_replicas_on_a_redis_state_prime_once_and_share_velocity(sqlite_db: Database, fitted: Fitted,
                                                                   redis_url: str) -> None:
    import uuid
    from datetime import timedelta

    import msgspec

    from marketpilot.fraud.features import FEATURES
    from marketpilot.fraud.redis_state import RedisFeatureState

    prefix = f"test:fraud:{uuid.uuid4().hex}:"
    writer = FraudService(sqlite_db, model_loader=lambda: None)
    for r in fitted.requests[:30]:
        writer.decide(r)
    replicas = [FraudService(sqlite_db, state=RedisFeatureState(redis_url, prefix=prefix)) for _ in range(2)]
    try:
        for service in replicas:
            service.install(fitted.model, "fraud/1")
        now = fitted.requests[29].at()
        assert replicas[0].prime(now=now, window=timedelta(days=60)) == 30
        assert replicas[1].prime(now=now, window=timedelta(days=60)) == 0  # already primed by the first
        burst = [FraudRequest(transaction_id=f"burst{i}", user_id=f"burst-user{i}", amount_minor=90_000,
                              currency="EUR", instrument_fingerprint="card-burst", device_id=f"dev-b{i}",
                              timestamp=now + timedelta(minutes=1)) for i in range(6)]
        for i, r in enumerate(burst):
            decision = replicas[i % 2].score(r)
            assert decision.strategy is Strategy.MODEL
        x = replicas[1].state.vector(msgspec.structs.replace(burst[0], transaction_id="probe"))
        assert x[FEATURES.index("instrument_count_1h")] == 6  # both replicas' attempts
        assert x[FEATURES.index("instrument_accounts")] == 6
        # the primed history is there for the replica that did not replay it
        first = fitted.requests[0]
        assert replicas[1].state.vector(first)[FEATURES.index("user_prior_txns")] >= 1
    finally:
        RedisFeatureState(redis_url, prefix=prefix).clear()
