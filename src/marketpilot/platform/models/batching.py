"""Micro-batching: concurrent requests to one model merged into one `predict` call.

A LightGBM or scikit-learn predict has a fixed cost per call (argument checks, building a
predictor, thread start-up) that dwarfs the cost of one row; 64 one-row calls cost several
times one 64-row call. Under concurrent load, :class:`MicroBatcher` queues requests, takes
every request waiting (up to `max_batch_size` rows), concatenates them along axis 0, runs
one predict on a worker thread and slices the outputs back.

The default window is zero: a batch is whatever queued up while the previous batch ran
(opportunistic batching). An idle model therefore answers a lone request at once, and
batches grow by themselves as load grows. A positive `max_delay` makes the first request of
a batch wait up to that long for company, which trades latency for larger batches at
moderate load.

Only row-independent models may be batched (output row i depends on input row i alone):
tree ensembles and most scikit-learn estimators, not a model that normalises across its
batch. Requests whose inputs differ in dtype or trailing shape go in separate calls. If a
merged call fails, its requests are retried one by one so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

Predict = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
Signature = tuple[tuple[str, str, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """`max_batch_size` rows at most per call (a larger single request runs alone);
    `max_delay` seconds the first request waits for more (0: none, see the module docs)."""

    max_batch_size: int = 64
    max_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if not 0.0 <= self.max_delay <= 1.0:
            raise ValueError(f"max_delay is in seconds and must be within [0, 1], got {self.max_delay}")


class _Pending:
    __slots__ = ("inputs", "rows", "signature", "future")

    def __init__(self, inputs: Mapping[str, np.ndarray], future: asyncio.Future[dict[str, np.ndarray]]) -> None:
        self.inputs = inputs
        self.rows = rows_of(inputs)
        self.signature: Signature = tuple(
            sorted((name, array.dtype.str, array.shape[1:]) for name, array in inputs.items())
        )
        self.future = future


def rows_of(inputs: Mapping[str, np.ndarray]) -> int:
    """The batch dimension shared by every input (ValueError if they disagree)."""
    rows = {array.shape[0] if array.ndim else 1 for array in inputs.values()}
    if len(rows) != 1:
        raise ValueError(f"inputs disagree on the batch dimension: {sorted(rows)}")
    return rows.pop()


class MicroBatcher:
    """Merges concurrent `submit` calls into batched `predict` calls on one worker thread.

    `on_batch(rows)` is called once per predict call (for the batch-size metric). The
    batcher binds to the event loop of its first `submit`; a later loop (tests that start a
    fresh loop per request) gets a fresh queue and worker.
    """

    def __init__(
        self, predict: Predict, config: BatchConfig | None = None, *, on_batch: Callable[[int], None] | None = None
    ) -> None:
        self.predict = predict
        self.config = config or BatchConfig()
        self._on_batch = on_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="marketpilot-batch")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def submit(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs for `inputs` alone, computed as part of a batch."""
        if self._closed:
            raise RuntimeError("micro-batcher is closed")
        loop = asyncio.get_running_loop()
        queue = self._queue if self._loop is loop else self._bind(loop)
        assert queue is not None
        pending = _Pending(inputs, loop.create_future())
        queue.put_nowait(pending)
        return await pending.future

    def close(self) -> None:
        self._closed = True
        if self._worker is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._worker.cancel)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Pending]:
        with self._lock:
            if self._loop is not loop:
                self._queue = asyncio.Queue()
                self._loop = loop
                self._worker = loop.create_task(self._run(self._queue), name="marketpilot-micro-batcher")
            assert self._queue is not None
            return self._queue

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        limit, delay = self.config.max_batch_size, self.config.max_delay
        while True:
            batch = [await queue.get()]
            rows = batch[0].rows
            deadline = loop.time() + delay
            while rows < limit:
                if not queue.empty():
                    item = queue.get_nowait()
                elif delay > 0 and (left := deadline - loop.time()) > 0:
                    try:
                        item = await asyncio.wait_for(queue.get(), left)
                    except TimeoutError:
                        break
                else:
                    break
                batch.append(item)
                rows += item.rows
            try:
                await self._execute(batch)
            except Exception as exc:  # never let the worker die: fail this batch, serve the next
                log.exception("micro-batch failed")
                for item in batch:
                    _settle(item, exc=exc)

    async def _execute(self, batch: list[_Pending]) -> None:
        groups: dict[Signature, list[_Pending]] = {}
        for item in batch:
            if not item.future.done():  # the caller went away
                groups.setdefault(item.signature, []).append(item)
        for group in groups.values():
            await self._execute_group(group)

    async def _execute_group(self, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        if len(group) == 1:
            await self._execute_one(group[0])
            return
        names = list(group[0].inputs)
        merged = {name: np.concatenate([item.inputs[name] for item in group]) for name in names}
        total = sum(item.rows for item in group)
        try:
            outputs = await loop.run_in_executor(self._executor, self.predict, merged)
            for name, array in outputs.items():
                if array.ndim == 0 or array.shape[0] != total:
                    raise ValueError(f"output {name!r} has shape {array.shape}, expected {total} rows")
        except Exception:
            log.warning("merged predict of %d requests failed; retrying one by one", len(group), exc_info=True)
            for item in group:
                await self._execute_one(item)
            return
        self._count(total)
        start = 0
        for item in group:
            end = start + item.rows
            _settle(item, result={name: array[start:end] for name, array in outputs.items()})
            start = end

    async def _execute_one(self, item: _Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._executor, self.predict, item.inputs)
        except Exception as exc:
            _settle(item, exc=exc)
            return
        self._count(item.rows)
        _settle(item, result=outputs)

    def _count(self, rows: int) -> None:
        if self._on_batch is not None:
            self._on_batch(rows)


def _settle(
    item: _Pending, *, result: dict[str, np.ndarray] | None = None, exc: BaseException | None = None
) -> None:
    if item.future.done():
        return
    if exc is not None:
        item.future.set_exception(exc)
    else:
        assert result is not None
        item.future.set_result(result)
