"""Slot-level rewards for the exploration policy, from what buyers did with served slates.

A served slate stays open for `attribution_seconds`; a click, add-to-cart or purchase that
names the slate's `request_id` (``InteractionLogged.request_id``, sent back by the client)
marks its listing rewarded. When the window has passed, the slate is closed into one
``learn(session_class, items, rewards, features)`` (`SlatePolicy.learn`): 1 for each rewarded
listing, 0 for each listing shown and left, which is the Bernoulli trial Thompson sampling
counts and the regression target LinUCB fits. Closing once per slate, after the
window, keeps a shown-then-clicked listing from counting as a failure and a success.

Slates are kept in serve order and closed from the oldest; at most `capacity` stay open (the
oldest are closed early beyond that), so memory is bounded whatever the traffic. State is per
process, like the policy it feeds: each replica learns from the slates it served.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from marketpilot.recommend.model import IntArray

FloatArray = npt.NDArray[np.float64]
Learn = Callable[[str, IntArray, FloatArray, FloatArray | None], None]

REWARDING = frozenset({"click", "add_to_cart", "purchase"})


@dataclass(slots=True)
class _OpenSlate:
    items: IntArray
    rewards: FloatArray
    served_at: float
    session_class: str
    features: FloatArray | None


class SlateFeedback:
    def __init__(self, learn: Learn, *, attribution_seconds: float = 1800.0, capacity: int = 100_000) -> None:
        if attribution_seconds <= 0 or capacity < 1:
            raise ValueError("attribution_seconds must be > 0 and capacity >= 1")
        self.learn = learn
        self.attribution_seconds = attribution_seconds
        self.capacity = capacity
        self._open: OrderedDict[str, _OpenSlate] = OrderedDict()
        self._lock = threading.Lock()
        self.closed = 0
        self.rewarded = 0

    def served(self, request_id: str, items: IntArray, now: float, session_class: str = "",
               features: FloatArray | None = None) -> None:
        overflow: list[_OpenSlate] = []
        with self._lock:
            self._open[request_id] = _OpenSlate(np.asarray(items, np.int64).copy(), np.zeros(len(items)), now,
                                                session_class, features)
            while len(self._open) > self.capacity:
                overflow.append(self._open.popitem(last=False)[1])
        self._close(overflow)

    def interaction(self, data: Mapping[str, Any], index: Mapping[str, int]) -> bool:
        """Apply one ``InteractionLogged`` payload; True if it rewarded an open slate."""
        request_id = data.get("request_id")
        if not request_id or data.get("event") not in REWARDING:
            return False
        item = index.get(str(data.get("listing_id")), -1)
        with self._lock:
            slate = self._open.get(str(request_id))
            if slate is None or item < 0:
                return False
            hit = slate.items == item
            if not hit.any():
                return False
            slate.rewards[hit] = 1.0
            self.rewarded += 1
            return True

    def close_due(self, now: float) -> int:
        """Close every slate served at least `attribution_seconds` before `now`."""
        due: list[_OpenSlate] = []
        with self._lock:
            while self._open:
                oldest = next(iter(self._open.values()))
                if now - oldest.served_at < self.attribution_seconds:
                    break
                due.append(self._open.popitem(last=False)[1])
        self._close(due)
        return len(due)

    def open_slates(self) -> int:
        with self._lock:
            return len(self._open)

    def _close(self, slates: list[_OpenSlate]) -> None:
        for slate in slates:
            self.learn(slate.session_class, slate.items, slate.rewards, slate.features)
        if slates:
            with self._lock:
                self.closed += len(slates)
