"""The model server: models loaded from the registry by alias, their V2 metadata read off the
model, predictions equal to calling the model in-process, refresh after a promotion."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import lightgbm as lgb
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.linear_model import LogisticRegression

from marketpilot.platform.config import Settings
from marketpilot.platform.models.artifacts import ArrayBundle
from marketpilot.platform.models.errors import ModelNotFound
from marketpilot.platform.models.fingerprints import fingerprint
from marketpilot.platform.models.records import CodeVersion, LoadedModel
from marketpilot.platform.models.registry import ModelRegistry
from marketpilot.platform.models.serving import ModelServer, ServedModel, TensorSpec
from marketpilot.platform.models.serving_adapters import booster_model
from marketpilot.platform.models.serving_errors import InvalidInferenceRequest, ModelNotServed
from marketpilot.platform.models.serving_metrics import PredictionHistogram
from marketpilot.platform.models.serving_refresh import RegistryWatcher, watch_registry

Data = tuple[np.ndarray, np.ndarray]
Boosters = tuple[lgb.Booster, lgb.Booster]
CODE = CodeVersion(commit="0" * 40, dirty=False, package_version="0.0.0")


def _register(registry: ModelRegistry, name: str, model: object, data: Data) -> int:
    return registry.log_training_run(
        name, model=model, params={}, metrics={}, data_fingerprint=fingerprint(*data), code=CODE
    ).version


@pytest.fixture
def server() -> Iterator[ModelServer]:
    s = ModelServer()
    yield s
    s.close()


def test_a_booster_is_served_by_alias_with_metadata_read_off_the_model(
    registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters, server: ModelServer
) -> None:
    first = _register(registry, model_name, boosters[0], data)
    second = _register(registry, model_name, boosters[1], data)
    registry.promote(model_name, first)
    registry.set_alias(model_name, "challenger", second)

    loaded = server.load(registry, model_name)

    assert {alias: m.version for alias, m in loaded.items()} == {"champion": "1", "challenger": "2"}
    assert server.versions(model_name) == ["1", "2"]
    champion = server.model(model_name)
    assert (champion.platform, champion.row_independent) == ("lightgbm", True)
    assert champion.inputs == (TensorSpec("input__0", "FP32", (-1, 5)),)
    assert champion.outputs == (TensorSpec("output__0", "FP32", (-1,)),)
    assert champion.source is not None and champion.source.run_id == registry.get(model_name, first).run_id

    x = data[0][:50].astype(np.float32)
    for version, booster in (("1", boosters[0]), ("2", boosters[1])):
        answer = server.predict(model_name, {"input__0": x}, version=version)
        assert answer.model_version == version
        np.testing.assert_array_equal(answer.outputs["output__0"], np.asarray(booster.predict(x), dtype=np.float32))


def test_refresh_follows_a_promotion_and_keeps_versions_already_loaded(
    sqlite_registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters, server: ModelServer
) -> None:
    first = _register(sqlite_registry, model_name, boosters[0], data)
    second = _register(sqlite_registry, model_name, boosters[1], data)
    sqlite_registry.promote(model_name, first)
    sqlite_registry.set_alias(model_name, "challenger", second)
    server.load(sqlite_registry, model_name)
    challenger = server.model(model_name, "challenger")

    assert server.refresh(sqlite_registry) == []
    sqlite_registry.promote(model_name, second)  # the challenger wins its trial
    assert server.refresh(sqlite_registry) == [model_name]

    assert server.aliases(model_name) == {"champion": "2"}
    assert server.versions(model_name) == ["2"]
    assert server.model(model_name) is challenger  # not read from disk again
    with pytest.raises(ModelNotServed, match=r"has no version 'challenger' loaded \(versions: 2; aliases: champion=2\)"):
        server.model(model_name, "challenger")


def test_a_model_without_a_champion_cannot_be_loaded(
    sqlite_registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters, server: ModelServer
) -> None:
    _register(sqlite_registry, model_name, boosters[0], data)
    with pytest.raises(ModelNotFound, match="no 'champion' alias"):
        server.load(sqlite_registry, model_name)
    assert server.names() == []


def test_a_scikit_learn_classifier_serves_its_probabilities(
    sqlite_registry: ModelRegistry, model_name: str, data: Data, server: ModelServer
) -> None:
    estimator = LogisticRegression().fit(*data)
    sqlite_registry.promote(model_name, _register(sqlite_registry, model_name, estimator, data))

    model = server.load(sqlite_registry, model_name)["champion"]

    assert model.platform == "sklearn"
    assert model.inputs == (TensorSpec("input__0", "FP64", (-1, 5)),)
    assert model.outputs == (TensorSpec("output__0", "FP64", (-1, 2)),)
    x = data[0][:20]
    answer = server.predict(model_name, {"input__0": x})
    np.testing.assert_array_equal(answer.outputs["output__0"], estimator.predict_proba(x))


def test_an_array_bundle_is_served_through_the_adapter_its_capability_gives(
    sqlite_registry: ModelRegistry, model_name: str, data: Data, server: ModelServer
) -> None:
    weights = np.array([0.5, -1.0, 0.0, 2.0, 1.0], dtype=np.float32)
    bundle = ArrayBundle({"weights": weights})
    sqlite_registry.promote(model_name, _register(sqlite_registry, model_name, bundle, data))

    with pytest.raises(TypeError, match="has flavour 'arrays', which has no default way to predict: pass an adapter"):
        server.load(sqlite_registry, model_name)

    def linear(loaded: LoadedModel) -> ServedModel:
        assert isinstance(loaded.model, ArrayBundle)
        w = loaded.model["weights"]
        return ServedModel(
            name=loaded.version.name,
            version=str(loaded.version.version),
            platform="numpy",
            inputs=(TensorSpec("features", "FP32", (-1, w.size)),),
            outputs=(TensorSpec("score", "FP32", (-1,)),),
            predict_fn=lambda inputs: {"score": inputs["features"] @ w},
            row_independent=True,
            source=loaded.version,
        )

    server.load(sqlite_registry, model_name, adapter=linear)
    x = data[0][:3].astype(np.float32)
    np.testing.assert_array_equal(server.predict(model_name, {"features": x}).outputs["score"], x @ weights)


def test_an_in_process_function_is_served_without_the_registry(server: ModelServer) -> None:
    def top_item(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"item": inputs["scores"].argmax(axis=1)}

    server.add_function(
        "top-item",
        top_item,
        inputs=[TensorSpec("scores", "FP32", (-1, 3))],
        outputs=[TensorSpec("item", "INT64", (-1,))],
        row_independent=True,
    )
    scores = np.array([[0.1, 0.7, 0.2], [0.9, 0.0, 0.1]], dtype=np.float32)
    answer = server.predict("top-item", {"scores": scores})
    assert (answer.model_name, answer.model_version) == ("top-item", "1")
    np.testing.assert_array_equal(answer.outputs["item"], np.array([1, 0]))
    assert answer.outputs["item"].dtype == np.int64
    assert server.model("top-item").platform == "numpy"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "model 'm' version 1: missing input(s) 'input__0' (inputs: 'input__0')"),
        (
            {"input__0": np.zeros((1, 5), np.float32), "x": np.zeros(1)},
            "model 'm' version 1: unknown input(s) 'x' (inputs: 'input__0')",
        ),
        ({"input__0": np.zeros((1, 5))}, "input 'input__0' has datatype FP64; the model takes FP32"),
        ({"input__0": np.zeros((1, 4), np.float32)}, "input 'input__0' has shape [1, 4]; the model takes [-1, 5] (-1: any size)"),
        ({"input__0": np.zeros(5, np.float32)}, "input 'input__0' has shape [5]; the model takes [-1, 5] (-1: any size)"),
    ],
)
def test_inputs_are_checked_against_the_model_metadata(
    inputs: dict[str, np.ndarray], message: str, boosters: Boosters, server: ModelServer
) -> None:
    server.add(booster_model(boosters[0], name="m", version="1"))
    with pytest.raises(InvalidInferenceRequest) as caught:
        server.predict("m", inputs)
    assert caught.value.message == message


def test_unknown_models_and_versions_are_named_in_the_error(boosters: Boosters, server: ModelServer) -> None:
    server.add(booster_model(boosters[0], name="m", version="1"))
    with pytest.raises(ModelNotServed, match=r"^no model named 'x' is served here$"):
        server.model("x")
    with pytest.raises(ModelNotServed, match=r"^model 'm' has no version '7' loaded \(versions: 1; aliases: champion=1\)$"):
        server.model("m", "7")


def test_an_empty_batch_answers_empty_outputs_without_calling_the_model(server: ModelServer) -> None:
    def never(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise AssertionError("the model must not be called for zero rows")

    server.add_function(
        "f", never, inputs=[TensorSpec("x", "FP32", (-1, 2))], outputs=[TensorSpec("y", "FP32", (-1, 3))],
        row_independent=True,
    )  # fmt: skip
    out = server.predict("f", {"x": np.zeros((0, 2), np.float32)}).outputs["y"]
    assert (out.shape, out.dtype) == ((0, 3), np.float32)


def test_metrics_count_requests_errors_and_the_values_predicted(boosters: Boosters, data: Data) -> None:
    prom = CollectorRegistry()
    server = ModelServer(metrics_registry=prom)
    server.add(booster_model(boosters[0], name="m", version="1"))
    x = data[0][:10].astype(np.float32)
    for _ in range(3):
        server.predict("m", {"input__0": x})
    with pytest.raises(InvalidInferenceRequest):
        server.predict("m", {"input__0": x.astype(np.float64)})
    server.close()

    labels = {"model": "m", "version": "1"}
    assert prom.get_sample_value("marketpilot_model_requests_total", labels) == 3
    assert prom.get_sample_value("marketpilot_model_inference_duration_seconds_count", labels) == 3
    assert prom.get_sample_value("marketpilot_model_errors_total", {**labels, "reason": "invalid_input"}) == 1
    assert prom.get_sample_value("marketpilot_model_batch_rows_sum", labels) == 30
    values = np.asarray(boosters[0].predict(x), dtype=np.float32)
    output = {**labels, "output": "output__0"}
    assert prom.get_sample_value("marketpilot_model_prediction_count", output) == 30
    assert prom.get_sample_value("marketpilot_model_prediction_bucket", {**output, "le": "0.5"}) == 3 * np.sum(values <= 0.5)
    assert prom.get_sample_value("marketpilot_model_prediction_bucket", {**output, "le": "+Inf"}) == 30
    assert prom.get_sample_value("marketpilot_model_prediction_sum", output) == pytest.approx(3 * values.astype(np.float64).sum())


def test_the_server_is_ready_once_every_expected_model_has_a_champion(boosters: Boosters, server: ModelServer) -> None:
    assert server.ready
    server.expect(["m"])
    assert not server.ready
    server.add(booster_model(boosters[0], name="m", version="1"), alias="challenger")
    assert not server.ready
    server.add(booster_model(boosters[0], name="m", version="2"))
    assert server.ready


def test_a_watcher_loads_the_expected_models_then_follows_promotions(
    sqlite_settings: Settings, sqlite_registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters
) -> None:
    first = _register(sqlite_registry, model_name, boosters[0], data)
    second = _register(sqlite_registry, model_name, boosters[1], data)
    sqlite_registry.promote(model_name, first)
    server = ModelServer()
    absent = f"{model_name}-absent"
    watcher = RegistryWatcher(server, lambda: ModelRegistry.from_settings(sqlite_settings), [model_name, absent])

    assert not server.ready
    assert watcher.poll_once() == [model_name]  # the absent model is logged and retried
    assert not server.ready
    assert server.aliases(model_name) == {"champion": "1"}
    assert watcher.poll_once() == []
    sqlite_registry.promote(model_name, second)
    assert watcher.poll_once() == [model_name]
    assert server.aliases(model_name) == {"champion": "2"}
    _register(sqlite_registry, absent, boosters[0], data)
    sqlite_registry.promote(absent, 1)
    assert watcher.poll_once() == [absent]
    assert server.ready
    watcher.stop()
    server.close()


def test_a_started_watcher_loads_on_its_own_thread(
    sqlite_settings: Settings, sqlite_registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters
) -> None:
    sqlite_registry.promote(model_name, _register(sqlite_registry, model_name, boosters[0], data))
    server = ModelServer()
    watcher = watch_registry(server, sqlite_settings, [model_name], interval=3600)
    for _ in range(3000):  # wait for the first poll (no timing is asserted)
        if watcher.polls:
            break
        threading.Event().wait(0.01)
    watcher.stop()
    assert watcher.polls == 1 and server.ready
    assert server.model(model_name).version == "1"
    server.close()


@pytest.mark.parametrize("size", [3, 100], ids=["small", "large"])  # the two binning paths
def test_the_prediction_histogram_bins_like_prometheus_and_skips_nan(size: int) -> None:
    values = np.linspace(-0.5, 1.5, size)
    values[1] = np.nan
    histogram = PredictionHistogram(buckets=(0.0, 0.5, 1.0))
    histogram.observe("m", "1", "y", values)
    histogram.observe("m", "1", "y", values.astype(np.float32))
    samples = {(s.name, s.labels.get("le")): s.value for s in next(iter(histogram.collect())).samples}
    finite = values[~np.isnan(values)]
    for le in ("0.0", "0.5", "1.0"):
        assert samples[("marketpilot_model_prediction_bucket", le)] == 2 * np.sum(finite <= float(le))
    assert samples[("marketpilot_model_prediction_bucket", "+Inf")] == 2 * finite.size
    assert samples[("marketpilot_model_prediction_count", None)] == 2 * finite.size
    assert samples[("marketpilot_model_prediction_sum", None)] == pytest.approx(2 * finite.sum(), rel=1e-6)


def test_readiness_waits_for_the_load_hook_of_the_first_load(
    sqlite_settings: Settings, sqlite_registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters
) -> None:
    """What the loader does after installing the champion (the serving app registers its drift
    watch there) is part of being ready: a request admitted before it would go unmonitored.
    A hook that fails does not keep the model from being served."""
    sqlite_registry.promote(model_name, _register(sqlite_registry, model_name, boosters[0], data))
    server = ModelServer()
    in_hook, release = threading.Event(), threading.Event()

    def hook(_registry: ModelRegistry, name: str) -> None:
        in_hook.set()
        assert release.wait(30)
        raise RuntimeError("the hook fails after its work; readiness must not stay held")

    watcher = RegistryWatcher(server, lambda: ModelRegistry.from_settings(sqlite_settings), [model_name], on_load=hook)
    poll = threading.Thread(target=watcher.poll_once)
    poll.start()
    try:
        assert in_hook.wait(30)
        assert server.model(model_name).version == "1"  # installed ...
        assert not server.ready  # ... but not ready while the hook runs
    finally:
        release.set()
        poll.join(30)
    assert server.ready
    watcher.stop()
    server.close()
