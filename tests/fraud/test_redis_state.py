"""The Redis feature state computes what the in-process state computes, and is shared."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest
from fraud_data import START, history

from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.features import FEATURES, FeatureState
from marketpilot.fraud.redis_state import RedisFeatureState


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test:fraud:{uuid.uuid4().hex}:"
    yield prefix
    RedisFeatureState(redis_url, prefix=prefix).clear()


def test_a_replayed_history_gives_the_same_features_on_both_backends(redis_url: str, prefix: str) -> None:
    requests, labels = history()
    local, shared = FeatureState(), RedisFeatureState(redis_url, prefix=prefix)
    users = [(f"u{u}", f"r{u % 5}", START - timedelta(days=100 + u)) for u in range(0, 300, 3)]
    for state in (local, shared):
        state.add_users(users)
        state.add_reputation("email_domain", ["tempmail.example"])
        state.add_reputation("ip", ["10.0.7.1"])
    compared = 0
    for i, (r, y) in enumerate(zip(requests, labels, strict=True)):
        a = local.vector_then_observe(r)
        b = shared.vector_then_observe(r) if i % 2 else shared.vector(r)
        if not i % 2:
            shared.observe(r)
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=f"request {i} ({r.transaction_id})")
        compared += 1
        if y:  # the ring's frauds are confirmed (after the label delay), as the review desk would
            assert local.label(r.transaction_id, True) and shared.label(r.transaction_id, True)
    assert compared == len(requests)
    seen = FEATURES.index("instrument_fraud_seen")
    ring = FEATURES.index("ring_accounts")
    last = shared.vector(requests[-1])
    assert np.isfinite(last).sum() > len(FEATURES) // 2
    # the history exercised every kind of feature: labels released, rings grown
    assert max(local.fraud_seen["instrument"].values()) > 0
    assert any(shared.vector(r)[ring] >= 4 for r in requests if r.user_id.startswith("ring"))
    assert any(shared.vector(r)[seen] > 0 for r in requests if r.user_id.startswith("ring"))
    assert not shared.label("never-seen", True)


def test_replicas_sharing_redis_count_each_others_attempts(redis_url: str, prefix: str) -> None:
    one, two = RedisFeatureState(redis_url, prefix=prefix), RedisFeatureState(redis_url, prefix=prefix)
    at = START + timedelta(days=1)

    def attempt(i: int, user: str) -> FraudRequest:
        return FraudRequest(transaction_id=f"t{user}{i}", user_id=user, amount_minor=5000, currency="EUR",
                            instrument_fingerprint="card-shared", device_id=f"dev-{user}",
                            timestamp=at + timedelta(seconds=i))

    for i in range(3):
        one.observe(attempt(i, "a"))
    x = two.vector(attempt(9, "b"))
    assert x[FEATURES.index("instrument_count_1h")] == 3
    assert x[FEATURES.index("instrument_accounts")] == 2
    assert x[FEATURES.index("ring_accounts")] == 2  # b would join a through the shared card


def test_concurrent_decisions_on_one_card_each_count_exactly_once(redis_url: str, prefix: str) -> None:
    replicas = [RedisFeatureState(redis_url, prefix=prefix) for _ in range(4)]
    at = START + timedelta(days=2)
    requests = [FraudRequest(transaction_id=f"c{i}", user_id=f"u{i % 7}", amount_minor=1000, currency="EUR",
                             instrument_fingerprint="card-hot", timestamp=at) for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda ir: replicas[ir[0] % 4].vector_then_observe(ir[1])[
            FEATURES.index("instrument_count_1h")], enumerate(requests)))
    # atomic read-and-fold: every attempt saw a different number of earlier ones
    assert sorted(seen) == list(range(200))
    probe = FraudRequest(transaction_id="probe", user_id="u0", amount_minor=1000, currency="EUR",
                         instrument_fingerprint="card-hot", timestamp=at)
    assert replicas[0].vector(probe)[FEATURES.index("instrument_count_1h")] == 200


def test_priming_is_claimed_once_and_clear_removes_everything(redis_url: str, prefix: str) -> None:
    a, b = RedisFeatureState(redis_url, prefix=prefix), RedisFeatureState(redis_url, prefix=prefix)
    assert a.claim_priming() and not b.claim_priming()
    a.add_reputation("device", ["d1"])
    assert a.clear() >= 2
    assert b.claim_priming()
