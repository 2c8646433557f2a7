"""Traffic policies: which version of a model answers a request, and which one shadows it.

A model served with a champion and a challenger runs under one :class:`TrafficPolicy`:

- ``champion``: the champion answers everything (the default, and the fallback whenever no
  challenger is loaded).
- ``canary``: the challenger answers `percent` % of requests.
- ``ab``: an experiment; arm ``B`` (the challenger) gets `percent` % of requests, arm ``A``
  (the champion) the rest, and every assignment is logged so outcomes can be joined back.
- ``shadow``: the champion answers; for `percent` % of requests (100 by default) the
  challenger also scores the same inputs on a background thread. Its answer is logged and
  counted, never returned.

Assignment is sticky: a request's key (`parameters.request_key`, else the request `id`) is
hashed with BLAKE2b into [0, 1), and the request goes to the challenger when the hash is
below `percent / 100`. The same key therefore always lands on the same side, and raising
the percentage only moves keys from champion to challenger, never back. The model name and
the policy's `salt` are part of the hash, so two models' canaries do not pick the same users,
and a new experiment can reshuffle with a new salt. A request without a key is assigned at
random (it cannot be sticky).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

import numpy as np

log = logging.getLogger("marketpilot.serving.traffic")

Mode: TypeAlias = Literal["champion", "canary", "ab", "shadow"]
MODES: tuple[str, ...] = get_args(Mode)
CHAMPION_ARM = "A"
CHALLENGER_ARM = "B"
_SCALE = float(2**64)


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    """How requests without an explicit version are split between champion and challenger."""

    mode: Mode = "champion"
    percent: float = 0.0
    salt: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"traffic mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0.0 <= self.percent <= 100.0:
            raise ValueError(f"traffic percent must be within [0, 100], got {self.percent}")
        if len(self.salt) > 64:
            raise ValueError("traffic salt must be at most 64 characters")

    @classmethod
    def canary(cls, percent: float, *, salt: str = "") -> TrafficPolicy:
        return cls("canary", percent, salt)

    @classmethod
    def ab(cls, percent_b: float = 50.0, *, salt: str = "") -> TrafficPolicy:
        return cls("ab", percent_b, salt)

    @classmethod
    def shadow(cls, percent: float = 100.0, *, salt: str = "") -> TrafficPolicy:
        return cls("shadow", percent, salt)

    @property
    def needs_challenger(self) -> bool:
        return self.mode != "champion"


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes: the alias that answers, whether the challenger shadows it,
    and the A/B arm (None outside an experiment)."""

    alias: str
    shadow: bool = False
    arm: str | None = None


CHAMPION_ROUTE = Route("champion")


def bucket(model: str, key: str, salt: str = "") -> float:
    """A deterministic, uniform number in [0, 1) for `key` (BLAKE2b, 64 bits)."""
    digest = hashlib.blake2b(f"{model}\x1f{salt}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def route(policy: TrafficPolicy, model: str, key: str | None, *, has_challenger: bool) -> Route:
    """The route of one request under `policy` (champion only when there is no challenger)."""
    if policy.mode == "champion" or not has_challenger:
        return CHAMPION_ROUTE
    u = random.random() if key is None else bucket(model, key, policy.salt)
    hit = u < policy.percent / 100.0
    if policy.mode == "canary":
        return Route("challenger") if hit else CHAMPION_ROUTE
    if policy.mode == "ab":
        return Route("challenger", arm=CHALLENGER_ARM) if hit else Route("champion", arm=CHAMPION_ARM)
    return Route("champion", shadow=hit)


@dataclass(frozen=True, slots=True)
class Assignment:
    """One A/B assignment, as logged: enough to join outcomes back to the arm."""

    model: str
    arm: str
    version: str
    request_key: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """What the challenger answered to a request it shadowed (never sent to the client)."""

    model: str
    version: str  # the shadow (challenger) version
    primary_version: str  # the version whose answer was returned
    request_key: str | None
    request_id: str | None
    outputs: dict[str, np.ndarray] | None  # None when the shadow prediction failed
    primary_outputs: dict[str, np.ndarray]
    seconds: float
    error: str | None = None


AssignmentSink = Callable[[Assignment], None]
ShadowSink = Callable[[ShadowResult], None]


def log_assignment(assignment: Assignment) -> None:
    log.info(
        "ab assignment %s arm %s", assignment.model, assignment.arm,
        extra={
            "event": "ab_assignment",
            "model": assignment.model,
            "arm": assignment.arm,
            "model_version": assignment.version,
            "request_key": assignment.request_key,
            "request_id": assignment.request_id,
        },
    )  # fmt: skip


def log_shadow(result: ShadowResult, *, max_values: int = 16) -> None:
    """A structured line per shadow prediction: the first `max_values` values of each output
    of both versions, and the largest absolute difference between them."""
    extra: dict[str, object] = {
        "event": "shadow_prediction",
        "model": result.model,
        "model_version": result.version,
        "primary_version": result.primary_version,
        "request_key": result.request_key,
        "request_id": result.request_id,
        "duration_ms": round(result.seconds * 1000, 3),
    }
    if result.outputs is None:
        log.warning("shadow prediction of %s v%s failed: %s", result.model, result.version, result.error, extra=extra)
        return
    extra["outputs"] = {name: _head(values, max_values) for name, values in result.outputs.items()}
    extra["primary_outputs"] = {name: _head(values, max_values) for name, values in result.primary_outputs.items()}
    extra["max_abs_diff"] = _max_abs_diff(result.outputs, result.primary_outputs)
    log.info("shadow prediction %s v%s", result.model, result.version, extra=extra)


def _head(values: np.ndarray, count: int) -> list[object]:
    return list(values.reshape(-1)[:count].tolist())


def _max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float | None:
    diffs = []
    for name, left in a.items():
        right = b.get(name)
        if right is not None and left.shape == right.shape and left.dtype.kind in "iuf" and right.dtype.kind in "iuf":
            if left.size:
                diffs.append(float(np.max(np.abs(left.astype(np.float64) - right.astype(np.float64)))))
    return max(diffs) if diffs else None


class ShadowRunner:
    """Runs shadow predictions on a small thread pool, after the primary answer is ready.

    The queue is bounded (`max_pending`): when the challenger cannot keep up, shadow work is
    dropped (and counted) instead of piling up memory or stealing CPU from live requests.
    """

    def __init__(self, *, workers: int = 1, max_pending: int = 1000) -> None:
        if workers < 1 or max_pending < 1:
            raise ValueError("shadow workers and max_pending must be at least 1")
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="marketpilot-shadow")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], None]) -> bool:
        """Queue `work`; False (and nothing queued) when the queue is full or closed."""
        if not self._slots.acquire(blocking=False):
            return False
        try:
            future = self._executor.submit(work)
        except RuntimeError:  # shut down
            self._slots.release()
            return False
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return True

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        self._slots.release()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued shadow prediction has run; False on timeout."""
        with self._lock:
            pending = set(self._pending)
        _, not_done = wait_futures(pending, timeout=timeout)
        return not not_done

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
