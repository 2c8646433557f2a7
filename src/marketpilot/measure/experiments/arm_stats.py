"""Sufficient statistics of one arm's outcome stream, mergeable and cheap to store.

Guardrails never need the raw events: counts, sums and sums of squares give means and
variances of GMV per session, click-through and error rate, and a fixed log-spaced latency
histogram gives the p95 within one bucket's width (about 5%).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LATENCY_EDGES_MS", "ArmStats", "latency_quantile"]

# bucket i holds latencies in [edges[i-1], edges[i]); 0.1 ms .. ~60 s, ratio 1.05 per bucket
LATENCY_EDGES_MS = 0.1 * 1.05 ** np.arange(0, 274)


def latency_quantile(histogram: np.ndarray, q: float) -> float | None:
    """The q-quantile (upper bucket edge) of a latency histogram, None when it is empty."""
    total = histogram.sum()
    if total == 0:
        return None
    idx = int(np.searchsorted(np.cumsum(histogram), q * total))
    return float(LATENCY_EDGES_MS[min(idx, LATENCY_EDGES_MS.size - 1)])


@dataclass
class ArmStats:
    sessions: int = 0
    gmv_sum: float = 0.0
    gmv_sumsq: float = 0.0
    click_sessions: int = 0  # sessions with at least one click
    requests: int = 0
    errors: int = 0
    latency_hist: np.ndarray = field(default_factory=lambda: np.zeros(LATENCY_EDGES_MS.size + 1, dtype=np.int64))

    def add_sessions(self, gmv: np.ndarray, clicked: np.ndarray | None = None) -> None:
        """Fold in a batch of finished sessions (GMV per session, whether each clicked)."""
        gmv = np.asarray(gmv, dtype=np.float64)
        if np.any(gmv < 0) or not np.all(np.isfinite(gmv)):
            raise ValueError("session GMV must be finite and non-negative")
        self.sessions += int(gmv.size)
        self.gmv_sum += float(gmv.sum())
        self.gmv_sumsq += float(np.square(gmv).sum())
        if clicked is not None:
            self.click_sessions += int(np.count_nonzero(clicked))

    def add_requests(self, latency_ms: np.ndarray, error: np.ndarray) -> None:
        latency_ms = np.asarray(latency_ms, dtype=np.float64)
        if latency_ms.shape != np.shape(error):
            raise ValueError("latency_ms and error must have the same length")
        if np.any(latency_ms < 0):
            raise ValueError("latency must be non-negative")
        self.requests += int(latency_ms.size)
        self.errors += int(np.count_nonzero(error))
        self.latency_hist += np.bincount(np.searchsorted(LATENCY_EDGES_MS, latency_ms, side="right"),
                                         minlength=self.latency_hist.size)

    @staticmethod
    def _moments(total: float, sumsq: float, n: int) -> tuple[float, float]:
        if n == 0:
            return 0.0, 0.0
        mean = total / n
        var = max(sumsq / n - mean * mean, 0.0) * n / max(n - 1, 1)
        return mean, var

    def gmv(self) -> tuple[float, float, int]:
        mean, var = self._moments(self.gmv_sum, self.gmv_sumsq, self.sessions)
        return mean, var, self.sessions

    def click_through(self) -> tuple[float, float, int]:
        p = self.click_sessions / self.sessions if self.sessions else 0.0
        return p, p * (1 - p), self.sessions

    def error_rate(self) -> tuple[float, float, int]:
        p = self.errors / self.requests if self.requests else 0.0
        return p, p * (1 - p), self.requests

    def latency_p95(self) -> float | None:
        return latency_quantile(self.latency_hist, 0.95)

    def to_json(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "gmv_sum": self.gmv_sum, "gmv_sumsq": self.gmv_sumsq,
                "click_sessions": self.click_sessions, "requests": self.requests, "errors": self.errors,
                "latency_hist": {str(i): int(c) for i, c in enumerate(self.latency_hist) if c}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArmStats:
        hist = np.zeros(LATENCY_EDGES_MS.size + 1, dtype=np.int64)
        for k, c in (data.get("latency_hist") or {}).items():
            hist[int(k)] = int(c)
        return cls(sessions=int(data["sessions"]), gmv_sum=float(data["gmv_sum"]),
                   gmv_sumsq=float(data["gmv_sumsq"]), click_sessions=int(data["click_sessions"]),
                   requests=int(data["requests"]), errors=int(data["errors"]), latency_hist=hist)
