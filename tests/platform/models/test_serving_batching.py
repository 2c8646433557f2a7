"""Micro-batching: concurrent requests merged into one predict call, sliced back exactly, and
never mixing requests that cannot share a call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

import lightgbm as lgb
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from marketpilot.platform.models.batching import BatchConfig, MicroBatcher
from marketpilot.platform.models.serving import ModelServer, TensorSpec
from marketpilot.platform.models.serving_adapters import booster_model

Data = tuple[np.ndarray, np.ndarray]
Boosters = tuple[lgb.Booster, lgb.Booster]


class Recorder:
    """A row-wise model (`y = 2x`) that records each call's rows; the first call can be held
    until the test has queued more requests behind it."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.calls: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append(len(inputs["x"]))
        self.started.set()
        self.release.wait(30)
        if np.isnan(inputs["x"]).any():
            raise ValueError("NaN in input")
        return {"y": inputs["x"] * 2}


async def _started(recorder: Recorder) -> None:
    while not recorder.started.is_set():
        await asyncio.sleep(0.001)


def _rows(i: int, n: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.full((n, 2), float(i))}


def test_requests_queued_behind_a_running_batch_are_merged_into_one_call() -> None:
    recorder = Recorder(hold_first=True)
    batcher = MicroBatcher(recorder, BatchConfig(max_batch_size=64))

    async def scenario() -> list[dict[str, np.ndarray]]:
        first = asyncio.ensure_future(batcher.submit(_rows(0)))
        await _started(recorder)
        rest = [asyncio.ensure_future(batcher.submit(_rows(i, n=1 + i % 3))) for i in range(1, 20)]
        await asyncio.sleep(0)
        recorder.release.set()
        return await asyncio.gather(first, *rest)

    results = asyncio.run(scenario())
    batcher.close()

    assert recorder.calls == [1, sum(1 + i % 3 for i in range(1, 20))]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], _rows(i, n=1 + i % 3 if i else 1)["x"] * 2)


def test_a_batch_stops_at_max_batch_size_rows() -> None:
    recorder = Recorder(hold_first=True)
    batcher = MicroBatcher(recorder, BatchConfig(max_batch_size=8))

    async def scenario() -> None:
        first = asyncio.ensure_future(batcher.submit(_rows(0)))
        await _started(recorder)
        rest = [asyncio.ensure_future(batcher.submit(_rows(i))) for i in range(1, 20)]
        await asyncio.sleep(0)
        recorder.release.set()
        await asyncio.gather(first, *rest)

    asyncio.run(scenario())
    batcher.close()
    assert recorder.calls == [1, 8, 8, 3]


def test_requests_of_different_shapes_or_dtypes_are_not_merged() -> None:
    recorder = Recorder(hold_first=True)
    batcher = MicroBatcher(recorder)

    async def scenario() -> list[dict[str, np.ndarray]]:
        first = asyncio.ensure_future(batcher.submit(_rows(0)))
        await _started(recorder)
        queued = [
            batcher.submit({"x": np.ones((1, 2))}),
            batcher.submit({"x": np.ones((1, 3))}),
            batcher.submit({"x": np.ones((2, 2), np.float32)}),
            batcher.submit({"x": np.ones((2, 2))}),
        ]
        rest = [asyncio.ensure_future(q) for q in queued]
        await asyncio.sleep(0)
        recorder.release.set()
        return await asyncio.gather(first, *rest)

    results = asyncio.run(scenario())
    batcher.close()
    assert sorted(recorder.calls) == [1, 1, 2, 3]  # the two float64 (n, 2) requests share a call
    assert [r["y"].shape for r in results] == [(1, 2), (1, 2), (1, 3), (2, 2), (2, 2)]
    assert results[3]["y"].dtype == np.float32


def test_a_failing_merged_call_is_retried_per_request_so_only_the_bad_request_fails() -> None:
    recorder = Recorder(hold_first=True)
    batcher = MicroBatcher(recorder)

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(batcher.submit(_rows(0)))
        await _started(recorder)
        bad = {"x": np.full((1, 2), np.nan)}
        rest = [asyncio.ensure_future(batcher.submit(r)) for r in (_rows(1), bad, _rows(3))]
        await asyncio.sleep(0)
        recorder.release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(scenario())
    batcher.close()
    assert isinstance(results[2], ValueError) and str(results[2]) == "NaN in input"
    for i in (0, 1, 3):
        np.testing.assert_array_equal(results[i]["y"], _rows(i)["x"] * 2)  # type: ignore[index]
    assert recorder.calls == [1, 3, 1, 1, 1]


def test_a_positive_window_waits_for_company() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, BatchConfig(max_batch_size=2, max_delay=1.0))

    async def scenario() -> None:
        first = asyncio.ensure_future(batcher.submit(_rows(0)))
        await asyncio.sleep(0)  # the worker takes the first request and waits for a second
        await asyncio.gather(first, batcher.submit(_rows(1)))

    asyncio.run(scenario())
    batcher.close()
    assert recorder.calls == [2]


def test_a_closed_batcher_refuses_work() -> None:
    batcher = MicroBatcher(Recorder())
    batcher.close()
    with pytest.raises(RuntimeError, match="micro-batcher is closed"):
        asyncio.run(batcher.submit(_rows(0)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be at least 1, got 0"),
        ({"max_delay": -0.1}, "max_delay is in seconds and must be within [0, 1], got -0.1"),
        ({"max_delay": 5}, "max_delay is in seconds and must be within [0, 1], got 5"),
    ],
)
def test_bad_batch_configs_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        BatchConfig(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_batched_booster_answers_each_request_as_if_alone(boosters: Boosters, data: Data) -> None:
    prom = CollectorRegistry()
    server = ModelServer(metrics_registry=prom)
    server.add(booster_model(boosters[0], name="m", version="1"))
    server.set_batching("m", BatchConfig(max_batch_size=32))
    requests = [data[0][i : i + 1 + i % 4].astype(np.float32) for i in range(100)]

    async def concurrently() -> list[np.ndarray]:
        answers = await asyncio.gather(*(server.infer("m", {"input__0": x}) for x in requests))
        return [a.outputs["output__0"] for a in answers]

    outputs = asyncio.run(concurrently())
    server.close()

    for x, out in zip(requests, outputs, strict=True):
        np.testing.assert_array_equal(out, np.asarray(boosters[0].predict(x), dtype=np.float32))
    labels = {"model": "m", "version": "1"}
    calls = prom.get_sample_value("marketpilot_model_batch_rows_count", labels)
    assert prom.get_sample_value("marketpilot_model_batch_rows_sum", labels) == sum(len(x) for x in requests)
    assert calls is not None and calls < len(requests)  # merged
    assert prom.get_sample_value("marketpilot_model_requests_total", labels) == len(requests)


def test_only_row_independent_models_can_be_batched() -> None:
    server = ModelServer()
    server.add_function(
        "f", lambda inputs: {"y": inputs["x"]}, inputs=[_spec("x")], outputs=[_spec("y")], row_independent=False
    )
    with pytest.raises(ValueError, match="model 'f' is not row-independent; it cannot be micro-batched"):
        server.set_batching("f", BatchConfig())
    server.close()


def _spec(name: str) -> TensorSpec:
    return TensorSpec(name, "FP64", (-1, 2))
