""""Is drift active for model X?", answered cheaply enough to ask on every request.

Rule: drift is **active** for a model while its latest *evaluated* window (verdict ``drift``
or ``ok``; ``insufficient`` windows are skipped) has verdict ``drift``. One clean window
turns it off again. Capabilities use it to fall back (e.g. to a simpler model or a
conservative threshold) while their inputs no longer look like the training data.

The answer is cached per model for `ttl` seconds (5 by default): a request pays a dict
lookup, and the database sees one query per model per TTL per process. A monitor in the
same process pushes each new report in with :meth:`DriftService.remember`, so there the
flip is immediate; other replicas see it within the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from marketpilot.platform.db import Database
from marketpilot.platform.monitoring.drift_report import DriftReport
from marketpilot.platform.monitoring.drift_store import latest_evaluated, latest_reports

DEFAULT_TTL = 5.0


class DriftService:
    def __init__(self, db: Database, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError(f"ttl: must be >= 0 seconds, got {ttl}")
        self.db = db
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, DriftReport | None]] = {}

    def is_active(self, model: str) -> bool:
        report = self.status(model)
        return report is not None and report.drifted

    def status(self, model: str) -> DriftReport | None:
        """The latest evaluated window's report (per-feature statistics included), or None
        before the model's first evaluated window."""
        now = self._clock()
        cached = self._cache.get(model)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.db.session() as session:
            report = latest_evaluated(session, model)
        self._cache[model] = (now + self.ttl, report)
        return report

    def remember(self, report: DriftReport) -> None:
        """Take a just-stored report as the model's status unless a newer one is known."""
        if report.verdict == "insufficient":
            return
        cached = self._cache.get(report.model)
        if cached is not None and cached[1] is not None and cached[1].window_end > report.window_end:
            return
        self._cache[report.model] = (self._clock() + self.ttl, report)

    def forget(self, model: str | None = None) -> None:
        """Drop the cached status of `model` (of every model if None)."""
        if model is None:
            self._cache.clear()
        else:
            self._cache.pop(model, None)

    def reports(self, *, model: str | None = None, per_model: int = 1) -> list[DriftReport]:
        """The `per_model` latest reports of each model (or only `model`), from the database."""
        if per_model < 1:
            raise ValueError(f"per_model: must be at least 1, got {per_model}")
        with self.db.session() as session:
            return latest_reports(session, model=model, per_model=per_model)
