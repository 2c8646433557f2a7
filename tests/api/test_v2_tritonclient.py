"""Compatibility with a real V2 client: NVIDIA's `tritonclient.http` against the real app
under uvicorn on a loopback port, serving a LightGBM model that the app loads from the model
registry itself because it is named in the `served_models` setting (the `marketpilot serve` path).

The client's answers must equal calling the same booster in-process, exactly at float32
precision, with the binary tensor extension (tritonclient's default) and with plain JSON."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pytest
import tritonclient.http as triton
import uvicorn
from api_seed import build_runtime
from tritonclient.utils import InferenceServerException

from marketpilot.api import create_app
from marketpilot.platform.auth import Role, create_key
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.models.fingerprints import fingerprint
from marketpilot.platform.models.registry import ModelRegistry
from marketpilot.platform.models.serving import ModelServer

MODEL = "fraud-scorer"


@dataclass(frozen=True)
class Served:
    url: str
    key: str
    booster: lgb.Booster  # the object registered, for the in-process reference
    features: np.ndarray

    @property
    def headers(self) -> dict[str, str]:
        """A fresh dict per call: tritonclient writes Inference-Header-Content-Length into the
        headers it is given, which would then go stale on the next request."""
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("triton")
    rng = np.random.default_rng(11)
    features = rng.normal(size=(2000, 8)).astype(np.float32)
    labels = (features[:, 0] * features[:, 1] + features[:, 2] > 0).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 31, "verbose": -1, "num_threads": 1, "seed": 5},
        lgb.Dataset(features, label=labels),
        num_boost_round=40,
    )
    with ModelRegistry.from_settings(load_settings(home=home)) as registry:
        version = registry.log_training_run(
            MODEL, model=booster, params={"num_leaves": 31}, metrics={}, data_fingerprint=fingerprint(features, labels)
        )
        registry.promote(MODEL, version.version)

    db = Database(f"sqlite:///{home / 'marketpilot.db'}")
    db.migrate()
    runtime = build_runtime(db, home, served_models=[MODEL])
    key = create_key(db, Role.SERVICE, name="scorer")[1]
    app = create_app(runtime)
    server: ModelServer = app.state.model_server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (uv.started and server.ready):  # the registry watcher loads the model in the background
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start or the model did not load")
        time.sleep(0.01)
    try:
        yield Served(f"127.0.0.1:{port}", key, booster, features)
    finally:
        uv.should_exit = True
        thread.join(30)
        sock.close()
        runtime.close()
        db.dispose()


@pytest.fixture
def client(served: Served) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(served.url) as c:
        yield c


def test_tritonclient_sees_a_live_ready_server_and_model(client: triton.InferenceServerClient, served: Served) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, "1")
    assert not client.is_model_ready(MODEL, "2")
    assert not client.is_model_ready("no-such-model")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "model_traffic"]
    assert client.get_model_metadata(MODEL, headers=served.headers) == {
        "name": MODEL,
        "versions": ["1"],
        "platform": "lightgbm",
        "inputs": [{"name": "input__0", "datatype": "FP32", "shape": [-1, 8]}],
        "outputs": [{"name": "output__0", "datatype": "FP32", "shape": [-1]}],
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("rows", [1, 37, 2000])
def test_tritonclient_inference_equals_the_in_process_model(
    client: triton.InferenceServerClient, served: Served, binary: bool, rows: int
) -> None:
    x = served.features[:rows]
    tensor = triton.InferInput("input__0", list(x.shape), "FP32").set_data_from_numpy(x, binary_data=binary)
    requested = [triton.InferRequestedOutput("output__0", binary_data=binary)]

    result = client.infer(MODEL, [tensor], outputs=requested, request_id=f"q-{rows}", headers=served.headers)

    expected = np.asarray(served.booster.predict(x), dtype=np.float32)
    got = result.as_numpy("output__0")
    assert got is not None and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (MODEL, "1", f"q-{rows}")


def test_tritonclient_defaults_binary_in_and_out(client: triton.InferenceServerClient, served: Served) -> None:
    x = served.features[:5]
    tensor = triton.InferInput("input__0", [5, 8], "FP32").set_data_from_numpy(x)
    result = client.infer(MODEL, [tensor], model_version="1", headers=served.headers)
    assert result.get_output("output__0")["parameters"] == {"binary_data_size": 20}
    np.testing.assert_array_equal(result.as_numpy("output__0"), np.asarray(served.booster.predict(x), dtype=np.float32))


def test_tritonclient_reads_v2_error_bodies(client: triton.InferenceServerClient, served: Served) -> None:
    x = np.zeros((1, 8), np.float64)
    tensor = triton.InferInput("input__0", [1, 8], "FP64").set_data_from_numpy(x)
    with pytest.raises(InferenceServerException) as wrong_type:
        client.infer(MODEL, [tensor], headers=served.headers)
    assert wrong_type.value.message() == "input 'input__0' has datatype FP64; the model takes FP32"
    assert wrong_type.value.status() == "400"
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("no-such-model", headers=served.headers)
    assert unknown.value.message() == "no model named 'no-such-model' is served here"
    with pytest.raises(InferenceServerException) as unauthenticated:
        client.get_model_metadata(MODEL)
    assert unauthenticated.value.message() == "missing API key: send `Authorization: Bearer <key>`"
