"""The V2 (Open Inference Protocol) routes through the app's test client: metadata, health,
inference equal to the in-process model, V2 error bodies, auth by role, traffic policies
set over HTTP, micro-batching, and per-model metrics.

The app is the real one (`create_app`) with the V2 router included and a model server whose
model `m` has two genuinely different LightGBM versions: champion 1 and challenger 2."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from api_seed import Keys, auth, build_runtime, seed
from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.platform.auth import Role, create_key
from marketpilot.platform.db import Database
from marketpilot.platform.models.batching import BatchConfig
from marketpilot.platform.models.serving import ModelServer, TensorSpec
from marketpilot.platform.models.serving_adapters import booster_model
from marketpilot.platform.models.traffic import ShadowResult, bucket
from marketpilot.runtime import Runtime

Boosters = tuple[lgb.Booster, lgb.Booster]


@pytest.fixture(scope="module")
def v2_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    home = tmp_path_factory.mktemp("v2")
    db = Database(f"sqlite:///{home / 'marketpilot.db'}")
    db.migrate()
    rt = build_runtime(db, home / "home")
    seed(rt)
    yield rt
    rt.close()
    db.dispose()


@pytest.fixture(scope="module")
def v2_keys(v2_runtime: Runtime) -> Keys:
    return Keys(
        operator=create_key(v2_runtime.db, Role.OPERATOR, name="ops")[1],
        merchant=create_key(v2_runtime.db, Role.MERCHANT, seller_id="s1", name="shop")[1],
        service=create_key(v2_runtime.db, Role.SERVICE, name="storefront")[1],
    )


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(400, 6)).astype(np.float32)


@pytest.fixture(scope="module")
def boosters(features: np.ndarray) -> Boosters:
    y = (features[:, 0] + features[:, 1] ** 2 > 0.8).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "deterministic": True, "seed": 1}
    return (
        lgb.train({**params, "num_leaves": 4}, lgb.Dataset(features, label=y), num_boost_round=10),
        lgb.train({**params, "num_leaves": 15}, lgb.Dataset(features, label=y), num_boost_round=30),
    )


@pytest.fixture
def app(v2_runtime: Runtime, boosters: Boosters) -> Iterator[FastAPI]:
    app = create_app(v2_runtime)  # the app mounts /v2 on its own model server
    server: ModelServer = app.state.model_server
    server.add(booster_model(boosters[0], name="m", version="1"))
    server.add(booster_model(boosters[1], name="m", version="2"), alias="challenger")
    yield app
    server.close()


@pytest.fixture
def server(app: FastAPI) -> ModelServer:
    s: ModelServer = app.state.model_server
    return s


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def service(v2_keys: Keys) -> dict[str, str]:
    return auth(v2_keys.service)


def infer_body(x: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "input__0", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}], **extra}


def predicted(booster: lgb.Booster, x: np.ndarray) -> list[float]:
    return np.asarray(booster.predict(x), dtype=np.float32).tolist()


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    return str(body["error"])


# -- server and health ----------------------------------------------------------------------


def test_server_metadata_and_health_need_no_key(client: TestClient) -> None:
    assert client.get("/v2").json() == {
        "name": "marketpilot",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "model_traffic"],
    }
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/m/ready").json() == {"name": "m", "version": "1", "ready": True}
    assert client.get("/v2/models/m/versions/2/ready").json() == {"name": "m", "version": "2", "ready": True}


def test_the_server_is_not_ready_until_every_expected_model_is_loaded(client: TestClient, server: ModelServer) -> None:
    server.expect(["m", "ranker"])
    response = client.get("/v2/health/ready")
    assert (response.status_code, response.json()) == (503, {"ready": False})
    assert error_of(client.get("/v2/models/ranker/ready"), 404) == "no model named 'ranker' is served here"


def test_model_metadata_is_read_off_the_model(client: TestClient, service: dict[str, str]) -> None:
    expected = {
        "name": "m",
        "versions": ["1", "2"],
        "platform": "lightgbm",
        "inputs": [{"name": "input__0", "datatype": "FP32", "shape": [-1, 6]}],
        "outputs": [{"name": "output__0", "datatype": "FP32", "shape": [-1]}],
    }
    assert client.get("/v2/models/m", headers=service).json() == expected
    assert client.get("/v2/models/m/versions/2", headers=service).json() == expected
    assert client.get("/v2/models/m/versions/challenger", headers=service).json() == expected


# -- inference ------------------------------------------------------------------------------


def test_inference_answers_what_the_model_answers_in_process(
    client: TestClient, service: dict[str, str], boosters: Boosters, features: np.ndarray
) -> None:
    x = features[:7]
    response = client.post("/v2/models/m/infer", json=infer_body(x, id="req-1"), headers=service)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_name": "m",
        "model_version": "1",
        "id": "req-1",
        "outputs": [{"name": "output__0", "datatype": "FP32", "shape": [7], "data": predicted(boosters[0], x)}],
    }
    nested = {"inputs": [{"name": "input__0", "shape": [7, 6], "datatype": "FP32", "data": x.tolist()}]}
    version2 = client.post("/v2/models/m/versions/2/infer", json=nested, headers=service).json()
    assert version2["model_version"] == "2"
    assert version2["outputs"][0]["data"] == predicted(boosters[1], x)


def test_binary_outputs_are_returned_when_asked_for(
    client: TestClient, service: dict[str, str], boosters: Boosters, features: np.ndarray
) -> None:
    x = features[:5]
    body = infer_body(x, outputs=[{"name": "output__0", "parameters": {"binary_data": True}}])
    response = client.post("/v2/models/m/infer", json=body, headers=service)
    length = int(response.headers["inference-header-content-length"])
    assert response.headers["content-type"] == "application/octet-stream"
    header = json.loads(response.content[:length])
    assert header["outputs"] == [
        {"name": "output__0", "datatype": "FP32", "shape": [5], "parameters": {"binary_data_size": 20}}
    ]
    values = np.frombuffer(response.content[length:], dtype="<f4")
    np.testing.assert_array_equal(values, np.asarray(boosters[0].predict(x), dtype=np.float32))


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/nope/infer", {}, 404, "no model named 'nope' is served here"),
        ("/v2/models/m/versions/9/infer", {}, 404, "model 'm' has no version '9' loaded (versions: 1, 2; aliases: challenger=2, champion=1)"),
        ("/v2/models/-m/infer", {}, 400, "model_name: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'"),
        ("/v2/models/m/infer", b"{not json", 400, "request body is not valid JSON: JSON is malformed: object keys must be strings (byte 1)"),
        ("/v2/models/m/infer", {"inputs": "x"}, 400, "invalid inference request: Expected `array`, got `str` - at `$.inputs`"),
        (
            "/v2/models/m/infer",
            {"inputs": [{"name": "input__0", "shape": [2, 6], "datatype": "FP32", "data": [0.0] * 6}]},
            400,
            "input 'input__0': shape [2, 6] holds 12 elements but `data` has 6",
        ),
        (
            "/v2/models/m/infer",
            {"inputs": [{"name": "input__0", "shape": [1, 6], "datatype": "FP64", "data": [0.0] * 6}]},
            400,
            "input 'input__0' has datatype FP64; the model takes FP32",
        ),
        (
            "/v2/models/m/infer",
            {"inputs": [{"name": "input__0", "shape": [1, 5], "datatype": "FP32", "data": [0.0] * 5}]},
            400,
            "input 'input__0' has shape [1, 5]; the model takes [-1, 6] (-1: any size)",
        ),
        (
            "/v2/models/m/infer",
            {"inputs": [{"name": "features", "shape": [1, 6], "datatype": "FP32", "data": [0.0] * 6}]},
            400,
            "model 'm' version 1: missing input(s) 'input__0'; unknown input(s) 'features' (inputs: 'input__0')",
        ),
        (
            "/v2/models/m/infer",
            {**infer_body(np.zeros((1, 6), np.float32)), "outputs": [{"name": "proba"}]},
            400,
            "model has no output 'proba' (outputs: output__0)",
        ),
        (
            "/v2/models/m/infer",
            {**infer_body(np.zeros((1, 6), np.float32)), "parameters": {"request_key": ["a"]}},
            400,
            "parameters.request_key must be a string (or an integer)",
        ),
    ],
)
def test_bad_requests_get_v2_error_bodies(
    client: TestClient, service: dict[str, str], path: str, body: object, status: int, message: str
) -> None:
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers=service)
    else:
        response = client.post(path, json=body, headers=service)
    assert error_of(response, status) == message


def test_a_failing_model_is_a_v2_500_that_names_the_request_id(
    client: TestClient, server: ModelServer, service: dict[str, str]
) -> None:
    def broken(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("secret internals")

    server.add_function("broken", broken, inputs=[TensorSpec("x", "FP32", (-1,))], outputs=[TensorSpec("y", "FP32", (-1,))])
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
    response = client.post("/v2/models/broken/infer", json=body, headers={**service, "X-Request-Id": "rid-42"})
    assert error_of(response, 500) == "internal server error; quote request id rid-42 when reporting it"


# -- auth -----------------------------------------------------------------------------------


def test_inference_and_metadata_need_an_operator_or_service_key(client: TestClient, v2_keys: Keys) -> None:
    body = infer_body(np.zeros((1, 6), np.float32))
    missing = client.post("/v2/models/m/infer", json=body)
    assert error_of(missing, 401) == "missing API key: send `Authorization: Bearer <key>`"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert error_of(client.get("/v2/models/m", headers=auth("mp_x")), 401) == "unknown or revoked API key"
    merchant = client.post("/v2/models/m/infer", json=body, headers=auth(v2_keys.merchant))
    assert error_of(merchant, 403) == "a merchant key may not call this route"
    for key in (v2_keys.service, v2_keys.operator):
        assert client.post("/v2/models/m/infer", json=body, headers=auth(key)).status_code == 200


# -- traffic --------------------------------------------------------------------------------


def test_operators_set_a_sticky_canary_over_http(client: TestClient, v2_keys: Keys, service: dict[str, str]) -> None:
    operator = auth(v2_keys.operator)
    assert client.get("/v2/models/m/traffic", headers=service).json() == {
        "model": "m", "mode": "champion", "percent": 0.0, "salt": "", "champion": "1", "challenger": "2",
    }  # fmt: skip
    denied = client.put("/v2/models/m/traffic", json={"mode": "canary", "percent": 30}, headers=service)
    assert error_of(denied, 403) == "a service key may not call this route"
    response = client.put("/v2/models/m/traffic", json={"mode": "canary", "percent": 30}, headers=operator)
    assert response.json() == {
        "model": "m", "mode": "canary", "percent": 30.0, "salt": "", "champion": "1", "challenger": "2",
    }  # fmt: skip

    x = np.zeros((1, 6), np.float32)
    for i in range(60):
        key = f"user-{i}"
        expected = "2" if bucket("m", key) < 0.3 else "1"
        for _ in range(2):  # sticky
            body = infer_body(x, parameters={"request_key": key})
            assert client.post("/v2/models/m/infer", json=body, headers=service).json()["model_version"] == expected


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"mode": "canary"}, 400, "percent: required for a canary"),
        ({"mode": "canary", "percent": 150}, 400, "percent: Input should be less than or equal to 100"),
        ({"mode": "blue-green"}, 400, "mode: Input should be 'champion', 'canary', 'ab' or 'shadow'"),
        ({"mode": "ab", "extra": 1}, 400, "extra: Extra inputs are not permitted"),
    ],
)
def test_bad_traffic_policies_are_v2_errors(
    client: TestClient, v2_keys: Keys, body: dict[str, Any], status: int, message: str
) -> None:
    assert error_of(client.put("/v2/models/m/traffic", json=body, headers=auth(v2_keys.operator)), status) == message


def test_a_policy_needing_a_challenger_conflicts_without_one(
    client: TestClient, server: ModelServer, boosters: Boosters, v2_keys: Keys
) -> None:
    server.add(booster_model(boosters[0], name="solo", version="1"))
    response = client.put("/v2/models/solo/traffic", json={"mode": "shadow"}, headers=auth(v2_keys.operator))
    assert error_of(response, 409).startswith("model 'solo' has no challenger loaded; a shadow policy needs one")


def test_shadow_never_changes_a_response_and_its_answer_is_logged(
    client: TestClient,
    server: ModelServer,
    v2_keys: Keys,
    service: dict[str, str],
    boosters: Boosters,
    features: np.ndarray,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shadows: list[ShadowResult] = []
    server.on_shadow(shadows.append)
    requests = [infer_body(features[i : i + 3], id=f"r{i}") for i in range(20)]
    plain = [client.post("/v2/models/m/infer", json=r, headers=service).content for r in requests]

    client.put("/v2/models/m/traffic", json={"mode": "shadow"}, headers=auth(v2_keys.operator))
    with caplog.at_level(logging.INFO, logger="marketpilot.serving.traffic"):
        shadowed = [client.post("/v2/models/m/infer", json=r, headers=service).content for r in requests]
        assert server.drain_shadow(timeout=30)

    assert shadowed == plain  # byte for byte
    assert sorted(s.request_id or "" for s in shadows) == sorted(f"r{i}" for i in range(20))
    for result in shadows:
        i = int((result.request_id or "r-1")[1:])
        assert result.outputs is not None
        assert result.outputs["output__0"].tolist() == predicted(boosters[1], features[i : i + 3])
    assert sum(getattr(r, "event", None) == "shadow_prediction" for r in caplog.records) == 20
    metrics = client.get("/metrics", headers=service).text
    assert 'marketpilot_model_shadow_predictions_total{model="m",outcome="ok",version="2"} 20.0' in metrics


def test_ab_assignment_is_returned_and_logged(
    client: TestClient, v2_keys: Keys, service: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client.put("/v2/models/m/traffic", json={"mode": "ab"}, headers=auth(v2_keys.operator))
    x = np.zeros((1, 6), np.float32)
    with caplog.at_level(logging.INFO, logger="marketpilot.serving.traffic"):
        answers = [
            client.post("/v2/models/m/infer", json=infer_body(x, id=f"r{i}", parameters={"request_key": f"u{i}"}),
                        headers=service).json()
            for i in range(40)
        ]  # fmt: skip
    arms = [(a["parameters"]["ab_arm"], a["model_version"]) for a in answers]
    assert set(arms) == {("A", "1"), ("B", "2")}
    logged = [vars(r) for r in caplog.records if getattr(r, "event", None) == "ab_assignment"]
    assert [(r["arm"], r["model_version"], r["request_key"], r["request_id"]) for r in logged] == [
        (arm, version, f"u{i}", f"r{i}") for i, (arm, version) in enumerate(arms)
    ]


# -- batching and metrics -------------------------------------------------------------------


def test_a_micro_batched_model_answers_the_same_over_http(
    client: TestClient, server: ModelServer, service: dict[str, str], boosters: Boosters, features: np.ndarray
) -> None:
    server.set_batching("m", BatchConfig(max_batch_size=16))
    for i in range(5):
        x = features[i : i + 2 + i]
        answer = client.post("/v2/models/m/infer", json=infer_body(x), headers=service).json()
        assert answer["outputs"][0]["data"] == predicted(boosters[0], x)


def test_per_model_metrics_are_scraped_with_the_app_metrics(
    client: TestClient, service: dict[str, str], features: np.ndarray
) -> None:
    for _ in range(3):
        client.post("/v2/models/m/infer", json=infer_body(features[:4]), headers=service)
    wrong_datatype = {"inputs": [{"name": "input__0", "shape": [1, 6], "datatype": "FP64", "data": [0.0] * 6}]}
    assert client.post("/v2/models/m/infer", json=wrong_datatype, headers=service).status_code == 400
    text = client.get("/metrics", headers=service).text
    assert 'marketpilot_model_requests_total{model="m",version="1"} 3.0' in text
    assert 'marketpilot_model_errors_total{model="m",reason="invalid_input",version="1"} 1.0' in text
    assert 'marketpilot_model_inference_duration_seconds_count{model="m",version="1"} 3.0' in text
    assert 'marketpilot_model_prediction_count{model="m",output="output__0",version="1"} 12.0' in text


def test_the_openapi_document_describes_the_v2_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    infer = spec["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert infer["security"] == [{"ApiKey": []}]
    assert infer["requestBody"]["content"]["application/json"]["schema"]["required"] == ["inputs"]
    assert "security" not in spec["paths"]["/v2/health/ready"]["get"]
    assert set(spec["paths"]) >= {
        "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{model_name}",
        "/v2/models/{model_name}/versions/{model_version}", "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/versions/{model_version}/ready", "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer", "/v2/models/{model_name}/traffic",
    }  # fmt: skip


def test_no_v2_operation_answers_with_a_server_error(app: FastAPI, v2_keys: Keys) -> None:
    """What `test_schemathesis` will check once the router is registered, for V2 alone."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Ok

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    v2_operations = [op for op in operations if op.path.startswith("/v2")]
    assert len(v2_operations) == 11
    failures = []
    for operation in v2_operations:
        for mode, examples in {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 5}.items():

            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def no_server_error(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=auth(v2_keys.operator), checks=[not_a_server_error])

            try:
                no_server_error()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except Exception as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
