"""The feature contract, run on both backends: in-process and Redis (shared by replicas)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.features import FEATURES, FeatureState
from marketpilot.fraud.redis_state import RedisFeatureState
from marketpilot.fraud.rings import AccountGraph

MakeState = Callable[..., FeatureState | RedisFeatureState]

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def req(tid: str, user: str, minutes: float, *, amount: int = 1000, card: str = "c1", device: str | None = "d1",
        **kw: object) -> FraudRequest:
    return FraudRequest(transaction_id=tid, user_id=user, amount_minor=amount, currency="EUR",
                        instrument_fingerprint=card, device_id=device, timestamp=T0 + timedelta(minutes=minutes),
                        **kw)  # type: ignore[arg-type]


def f(x: np.ndarray, name: str) -> float:
    return float(x[FEATURES.index(name)])


@pytest.fixture(params=["embedded", "redis"])
def make_state(request: pytest.FixtureRequest) -> Iterator[MakeState]:
    if request.param == "embedded":
        yield FeatureState
        return
    url = request.getfixturevalue("redis_url")
    made: list[RedisFeatureState] = []

    def make(**kw: object) -> RedisFeatureState:
        state = RedisFeatureState(url, prefix=f"test:fraud:{uuid.uuid4().hex}:", **kw)  # type: ignore[arg-type]
        made.append(state)
        return state

    yield make
    for state in made:
        state.clear()


def test_velocity_counts_only_what_came_before_and_inside_the_window(make_state: MakeState) -> None:
    s = make_state()
    for i, minute in enumerate((0, 10, 70)):
        s.observe(req(f"t{i}", "u1", minute, amount=2000))
    x = s.vector(req("t9", "u1", 75))
    assert f(x, "user_count_1h") == 1  # only the attempt at minute 70 is inside the last hour
    assert f(x, "user_count_24h") == 3
    assert f(x, "user_amount_24h") == pytest.approx(np.log1p(60.0))
    assert f(x, "user_prior_txns") == 3
    # an attempt in the past is featurised as of its own time: later events do not leak in
    assert f(s.vector(req("t8", "u1", 5)), "user_count_24h") == 1


def test_new_instrument_amount_history_and_geo_mismatch(make_state: MakeState) -> None:
    s = make_state()
    s.add_users([("u1", "de", T0 - timedelta(days=10))])
    for i in range(5):
        s.observe(req(f"t{i}", "u1", i, amount=1000 + i))
    x = s.vector(req("t9", "u1", 10, amount=100_000, card="c2", ip_region="fr", shipping_region="de"))
    assert f(x, "new_instrument") == 1 and f(x, "new_device") == 0
    assert f(x, "amount_z_user") > 10
    assert f(x, "ip_ship_mismatch") == 1 and f(x, "ip_home_mismatch") == 1
    assert f(x, "account_age_days") == pytest.approx(10 + 10 / 1440)


def test_shared_devices_build_one_component_and_count_accounts(make_state: MakeState) -> None:
    s = make_state()
    s.observe(req("a", "u1", 0, card="c1", device="d1"))
    s.observe(req("b", "u2", 1, card="c2", device="d1"))
    s.observe(req("c", "u3", 2, card="c2", device="d3"))
    x = s.vector(req("d", "u4", 3, card="c9", device="d3"))
    assert f(x, "ring_accounts") == 4  # u4 would join u1-u2-u3 through d3
    assert f(x, "device_accounts") == 2
    assert f(s.vector(req("e", "u5", 3, card="c8", device="d8")), "ring_accounts") == 1


def test_labels_count_only_after_the_label_delay(make_state: MakeState) -> None:
    s = make_state(label_delay=timedelta(days=1))
    s.observe(req("bad", "u1", 0, card="stolen", device="d1"))
    s.label("bad", True)
    assert f(s.vector(req("x", "u2", 60, card="stolen", device="d2")), "instrument_fraud_seen") == 0
    assert f(s.vector(req("y", "u2", 60 * 25, card="stolen", device="d2")), "instrument_fraud_seen") == 1


def test_reputation_lists(make_state: MakeState) -> None:
    s = make_state()
    s.add_reputation("ip", ["198.51.100.7"])
    x = s.vector(req("t", "u1", 0, ip="198.51.100.7", device=None))
    assert f(x, "rep_ip") == 1 and np.isnan(f(x, "rep_device"))
    with pytest.raises(ValueError, match="unknown reputation list"):
        s.add_reputation("phone", ["1"])


def test_account_graph_merges_components() -> None:
    g = AccountGraph()
    assert g.link("u1", ["d1"]) == 1
    assert g.link("u2", ["d2"]) == 1
    assert g.link("u3", ["d1", "d2"]) == 3
    assert g.members("u1") == {"u1", "u2", "u3"}
    assert g.members("nobody") == {"nobody"}
