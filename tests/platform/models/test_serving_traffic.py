"""Traffic policies on the model server: a sticky canary, an A/B experiment whose assignments
are logged, and a shadow challenger that is logged and never answers."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping

import lightgbm as lgb
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from marketpilot.platform.models.serving import ModelServer, TensorSpec
from marketpilot.platform.models.serving_adapters import booster_model
from marketpilot.platform.models.serving_errors import TrafficConflict
from marketpilot.platform.models.traffic import Assignment, ShadowResult, TrafficPolicy, bucket, route

Data = tuple[np.ndarray, np.ndarray]
Boosters = tuple[lgb.Booster, lgb.Booster]


@pytest.fixture
def prom() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def server(boosters: Boosters, prom: CollectorRegistry) -> Iterator[ModelServer]:
    """Model `m`: champion v1 and challenger v2, two genuinely different boosters."""
    s = ModelServer(metrics_registry=prom)
    s.add(booster_model(boosters[0], name="m", version="1"))
    s.add(booster_model(boosters[1], name="m", version="2"), alias="challenger")
    yield s
    s.close()


@pytest.fixture
def x(data: Data) -> np.ndarray:
    return data[0][:4].astype(np.float32)


def test_a_ten_percent_canary_answers_ten_percent_of_ten_thousand_requests(server: ModelServer, x: np.ndarray) -> None:
    server.set_traffic("m", TrafficPolicy.canary(10))
    keys = [f"user-{i}" for i in range(10_000)]

    versions = {key: server.predict("m", {"input__0": x}, request_key=key).model_version for key in keys}

    share = Counter(versions.values())["2"] / len(keys)
    assert 0.09 <= share <= 0.11, share
    for key in keys[:500]:  # the same key always lands on the same side
        assert server.predict("m", {"input__0": x}, request_key=key).model_version == versions[key]


def test_the_request_id_is_the_sticky_key_when_no_request_key_is_given(server: ModelServer, x: np.ndarray) -> None:
    server.set_traffic("m", TrafficPolicy.canary(50))
    for i in range(50):
        first = server.predict("m", {"input__0": x}, request_id=f"r{i}").model_version
        assert all(server.predict("m", {"input__0": x}, request_id=f"r{i}").model_version == first for _ in range(3))
        keyed = server.predict("m", {"input__0": x}, request_key=f"r{i}", request_id="other").model_version
        assert keyed == first  # request_key wins over the id


def test_raising_a_canary_only_moves_keys_from_champion_to_challenger() -> None:
    keys = [f"k{i}" for i in range(2000)]
    at = {p: {k for k in keys if route(TrafficPolicy.canary(p), "m", k, has_challenger=True).alias == "challenger"} for p in (5, 20, 60)}
    assert at[5] <= at[20] <= at[60]
    assert len(at[5]) < len(at[20]) < len(at[60])


def test_assignment_depends_on_the_model_and_salt_so_experiments_do_not_pick_the_same_users() -> None:
    keys = [f"k{i}" for i in range(2000)]
    assert all(0.0 <= bucket("m", k) < 1.0 for k in keys)
    assert bucket("m", "k1") == bucket("m", "k1")
    low_m = {k for k in keys if bucket("m", k) < 0.1}
    low_n = {k for k in keys if bucket("n", k) < 0.1}
    low_salted = {k for k in keys if bucket("m", k, "exp-2") < 0.1}
    assert len(low_m & low_n) < len(low_m) / 2
    assert len(low_m & low_salted) < len(low_m) / 2


def test_an_explicit_version_bypasses_the_policy(server: ModelServer, x: np.ndarray) -> None:
    server.set_traffic("m", TrafficPolicy.canary(100))
    assert server.predict("m", {"input__0": x}, request_key="a").model_version == "2"
    assert server.predict("m", {"input__0": x}, version="1", request_key="a").model_version == "1"
    assert server.predict("m", {"input__0": x}, version="champion").model_version == "1"


def test_ab_assignments_are_logged_counted_and_returned(
    server: ModelServer, x: np.ndarray, prom: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Assignment] = []
    server.on_assignment(seen.append)
    server.set_traffic("m", TrafficPolicy.ab(50, salt="exp-1"))

    with caplog.at_level(logging.INFO, logger="marketpilot.serving.traffic"):
        answers = [server.predict("m", {"input__0": x}, request_key=f"u{i}", request_id=f"r{i}") for i in range(400)]

    arms = [a.parameters["ab_arm"] for a in answers]
    assert all((arm, a.model_version) in {("A", "1"), ("B", "2")} for arm, a in zip(arms, answers, strict=True))
    assert 150 < arms.count("B") < 250
    assert [(s.arm, s.version, s.request_key, s.request_id) for s in seen] == [
        (arm, a.model_version, f"u{i}", f"r{i}") for i, (arm, a) in enumerate(zip(arms, answers, strict=True))
    ]
    logged = [r for r in caplog.records if getattr(r, "event", None) == "ab_assignment"]
    assert len(logged) == 400
    fields = ("model", "arm", "model_version", "request_key", "request_id")
    assert [tuple(vars(r)[f] for f in fields) for r in logged] == [
        ("m", arm, a.model_version, f"u{i}", f"r{i}") for i, (arm, a) in enumerate(zip(arms, answers, strict=True))
    ]
    assert prom.get_sample_value("marketpilot_model_ab_assignments_total", {"model": "m", "version": "2", "arm": "B"}) == arms.count("B")


def test_a_shadow_challenger_never_changes_an_answer_and_is_logged(
    server: ModelServer, x: np.ndarray, boosters: Boosters, prom: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    shadows: list[ShadowResult] = []
    server.on_shadow(shadows.append)
    keys = [f"u{i}" for i in range(30)]
    plain = [server.predict("m", {"input__0": x}, request_key=k) for k in keys]

    server.set_traffic("m", TrafficPolicy.shadow())
    with caplog.at_level(logging.INFO, logger="marketpilot.serving.traffic"):
        shadowed = [server.predict("m", {"input__0": x}, request_key=k, request_id=f"r-{k}") for k in keys]
        assert server.drain_shadow(timeout=30)

    for before, after in zip(plain, shadowed, strict=True):
        assert (after.model_version, after.parameters) == (before.model_version, before.parameters) == ("1", {})
        np.testing.assert_array_equal(after.outputs["output__0"], before.outputs["output__0"])
    assert len(shadows) == len(keys)
    expected = np.asarray(boosters[1].predict(x), dtype=np.float32)
    for result in shadows:
        assert (result.model, result.version, result.primary_version, result.error) == ("m", "2", "1", None)
        assert result.outputs is not None
        np.testing.assert_array_equal(result.outputs["output__0"], expected)
    assert sorted(r.request_id for r in shadows) == sorted(f"r-{k}" for k in keys)  # type: ignore[type-var]
    logged = [r for r in caplog.records if getattr(r, "event", None) == "shadow_prediction"]
    assert len(logged) == len(keys)
    line = vars(logged[0])
    assert (line["model"], line["model_version"], line["primary_version"]) == ("m", "2", "1")
    assert line["outputs"] == {"output__0": expected.tolist()}
    assert line["max_abs_diff"] == pytest.approx(float(np.max(np.abs(expected - plain[0].outputs["output__0"]))))
    assert prom.get_sample_value("marketpilot_model_shadow_predictions_total", {"model": "m", "version": "2", "outcome": "ok"}) == len(keys)
    assert prom.get_sample_value("marketpilot_model_requests_total", {"model": "m", "version": "2"}) is None


def test_a_failing_shadow_is_counted_and_never_reaches_the_caller(x: np.ndarray, boosters: Boosters, prom: CollectorRegistry) -> None:
    server = ModelServer(metrics_registry=prom)
    server.add(booster_model(boosters[0], name="m", version="1"))

    def broken(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("challenger exploded")

    server.add_function(
        "m", broken, inputs=[TensorSpec("input__0", "FP32", (-1, 5))], outputs=[TensorSpec("output__0", "FP32", (-1,))],
        version="2", alias="challenger",
    )  # fmt: skip
    shadows: list[ShadowResult] = []
    server.on_shadow(shadows.append)
    server.set_traffic("m", TrafficPolicy.shadow())

    answer = server.predict("m", {"input__0": x})
    assert server.drain_shadow(timeout=30)
    server.close()

    np.testing.assert_array_equal(answer.outputs["output__0"], np.asarray(boosters[0].predict(x), dtype=np.float32))
    assert [(s.outputs, s.error) for s in shadows] == [(None, "RuntimeError: challenger exploded")]
    assert prom.get_sample_value("marketpilot_model_shadow_predictions_total", {"model": "m", "version": "2", "outcome": "error"}) == 1


def test_shadow_work_beyond_the_queue_is_dropped_not_queued(x: np.ndarray, boosters: Boosters, prom: CollectorRegistry) -> None:
    server = ModelServer(metrics_registry=prom, shadow_queue=1)
    server.add(booster_model(boosters[0], name="m", version="1"))
    release = threading.Event()

    def slow(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        release.wait(30)
        return {"output__0": np.zeros(len(inputs["input__0"]))}

    server.add_function(
        "m", slow, inputs=[TensorSpec("input__0", "FP32", (-1, 5))], outputs=[TensorSpec("output__0", "FP32", (-1,))],
        version="2", alias="challenger",
    )  # fmt: skip
    server.set_traffic("m", TrafficPolicy.shadow())
    for _ in range(5):
        assert server.predict("m", {"input__0": x}).model_version == "1"
    release.set()
    assert server.drain_shadow(timeout=30)
    server.close()

    def count(outcome: str) -> float | None:
        return prom.get_sample_value("marketpilot_model_shadow_predictions_total", {"model": "m", "version": "2", "outcome": outcome})

    assert (count("ok"), count("dropped")) == (1, 4)


def test_a_partial_shadow_mirrors_only_its_share_of_keys(server: ModelServer, x: np.ndarray) -> None:
    shadows: list[ShadowResult] = []
    server.on_shadow(shadows.append)
    server.set_traffic("m", TrafficPolicy.shadow(25))
    keys = [f"u{i}" for i in range(200)]
    for key in keys:
        server.predict("m", {"input__0": x}, request_key=key)
    assert server.drain_shadow(timeout=30)
    assert sorted(s.request_key for s in shadows) == sorted(k for k in keys if bucket("m", k) < 0.25)  # type: ignore[type-var]


def test_a_policy_that_needs_a_challenger_is_refused_without_one(boosters: Boosters) -> None:
    server = ModelServer()
    server.add(booster_model(boosters[0], name="m", version="1"))
    with pytest.raises(TrafficConflict, match="model 'm' has no challenger loaded; a canary policy needs one"):
        server.set_traffic("m", TrafficPolicy.canary(10))
    server.set_traffic("m", TrafficPolicy())
    assert server.traffic("m") == TrafficPolicy("champion", 0.0, "")
    server.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "blue-green"}, "traffic mode 'blue-green' is not one of champion, canary, ab, shadow"),
        ({"mode": "canary", "percent": 120}, "traffic percent must be within [0, 100], got 120"),
        ({"mode": "canary", "percent": -1}, "traffic percent must be within [0, 100], got -1"),
        ({"mode": "ab", "salt": "s" * 65}, "traffic salt must be at most 64 characters"),
    ],
)
def test_bad_policies_are_refused_with_a_message(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        TrafficPolicy(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message
