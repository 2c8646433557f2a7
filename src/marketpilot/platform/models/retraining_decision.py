"""The promotion rule of automated retraining, and the record of each decision.

Rule (:func:`decide`): a challenger replaces the champion only if, on the same time-ordered
holdout, it beats the champion's primary metric by at least the margin (in the metric's own
units, in the metric's better direction), or there is no champion yet. Everything else
keeps the champion: a worse, equal or barely better challenger, an undefined metric, or a
champion that cannot be scored on the holdout (its features changed, its files are gone)
- the last because the safe default for an unattended job is to change nothing and say so.

Every run ends in a :class:`Decision`: both models' metrics, the margin, what happened and
why. It is returned by the workflow (and so kept in DBOS's system database as the
workflow's output), and written as ``retrain.*`` tags on the challenger's registry version
so that ``marketpilot models show`` tells why a version was or was not promoted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal

from marketpilot.platform.models.training import DataSummary, Direction, MetricGoal

Trigger = Literal["manual", "schedule", "drift"]
Outcome = Literal["promoted", "rejected", "held", "superseded", "skipped"]
"""promoted: the challenger is the champion now. rejected: the rule kept the champion.
held: the rule would promote but promotion was switched off (a dry run). superseded: the
rule would promote but the champion changed while the run was in flight (someone promoted
or rolled back), so the run does not override that choice. skipped: too little data to
train or hold out; nothing was registered."""

TAG_PREFIX = "retrain."
TAG_WORKFLOW = "retrain.workflow_id"
TAG_TRIGGER = "retrain.trigger"
TAG_CAUSE = "retrain.cause"


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    """How a retraining run decides.

    `margin` (metric units; None = the trainer's `default_margin`) is how much better the
    challenger must be. `holdout_fraction` is the latest share of rows, by time, both models
    are scored on. With `promote` False the run registers and judges the challenger but
    never changes the champion.
    """

    margin: float | None = None
    holdout_fraction: float = 0.2
    promote: bool = True

    def __post_init__(self) -> None:
        if self.margin is not None and not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"margin must be a finite number >= 0, got {self.margin}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be between 0 and 1 (exclusive), got {self.holdout_fraction}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rule says, before anything is promoted."""

    promote: bool
    reason: str
    improvement: float | None


def decide(
    goal: MetricGoal,
    margin: float,
    challenger: float,
    champion: float | None,
    *,
    champion_version: int | None,
    champion_error: str | None = None,
) -> Verdict:
    """Apply the promotion rule (see the module docstring) to primary-metric values.

    >>> auc = MetricGoal("auc", "higher")
    >>> decide(auc, 0.01, 0.71, 0.69, champion_version=3).reason
    'challenger auc 0.7100 beats champion v3 0.6900 by 0.0200 >= margin 0.0100'
    >>> decide(auc, 0.01, 0.695, 0.69, champion_version=3).promote
    False
    """
    metric = goal.name
    if not math.isfinite(challenger):
        return Verdict(False, f"challenger {metric} is undefined on the holdout ({challenger})", None)
    if champion_version is None:
        return Verdict(True, f"no champion yet; challenger {metric} {challenger:.4f}", None)
    if champion_error is not None:
        return Verdict(
            False, f"champion v{champion_version} could not be scored on the holdout ({champion_error}); "
            "kept it: promote by hand if the challenger should replace it", None,
        )
    if champion is None or not math.isfinite(champion):
        return Verdict(False, f"champion v{champion_version} {metric} is undefined on the holdout; kept it", None)
    gain = goal.improvement(challenger, champion)
    comparison = (
        f"challenger {metric} {challenger:.4f} vs champion v{champion_version} {champion:.4f} "
        f"({goal.direction} is better)"
    )
    if gain > 0 and gain >= margin:
        return Verdict(
            True,
            f"challenger {metric} {challenger:.4f} beats champion v{champion_version} {champion:.4f} "
            f"by {gain:.4f} >= margin {margin:.4f}",
            gain,
        )
    if gain <= 0:
        return Verdict(False, f"{comparison}: not better (by {gain:.4f})", gain)
    return Verdict(False, f"{comparison}: better by {gain:.4f}, less than margin {margin:.4f}", gain)


@dataclass(frozen=True, slots=True)
class Decision:
    """The record of one retraining run (see the module docstring)."""

    model: str
    workflow_id: str
    trigger: Trigger
    cause: str
    outcome: Outcome
    reason: str
    metric: str
    direction: Direction
    margin: float
    challenger_version: int | None
    champion_version: int | None  # the champion the challenger was compared with
    challenger_value: float | None
    champion_value: float | None
    improvement: float | None
    decided_at: datetime
    data: DataSummary | None = None
    challenger_metrics: Mapping[str, float] = field(default_factory=dict)
    champion_metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def tags(self) -> dict[str, str]:
        """The decision as registry tags of the challenger version."""
        values: dict[str, object] = {
            "outcome": self.outcome,
            "reason": self.reason,
            "metric": self.metric,
            "direction": self.direction,
            "margin": self.margin,
            "challenger_value": self.challenger_value,
            "champion_version": self.champion_version,
            "champion_value": self.champion_value,
            "improvement": self.improvement,
            "decided_at": self.decided_at.isoformat(),
        }
        return {f"{TAG_PREFIX}{key}": "" if value is None else str(value) for key, value in values.items()}

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: datetimes as ISO 8601, undefined metrics as null."""
        return _jsonable(asdict(self))  # type: ignore[return-value]


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
