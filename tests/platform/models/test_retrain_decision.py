"""The promotion rule and the decision record (pure: no database, no DBOS)."""

from __future__ import annotations

import doctest
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from marketpilot.platform.models import retraining_decision
from marketpilot.platform.models.retraining_decision import Decision, RetrainPolicy, Verdict, decide
from marketpilot.platform.models.training import DataSummary, MetricGoal

AUC = MetricGoal("auc", "higher")
LOG_LOSS = MetricGoal("log_loss", "lower")


@pytest.mark.parametrize(
    ("goal", "margin", "challenger", "champion", "champion_version", "error", "expected"),
    [
        (AUC, 0.01, 0.62, None, None, None,
         Verdict(True, "no champion yet; challenger auc 0.6200", None)),
        (AUC, 0.01, 0.62, 0.60, 4, None,
         Verdict(True, "challenger auc 0.6200 beats champion v4 0.6000 by 0.0200 >= margin 0.0100", 0.02)),
        (AUC, 0.01, 0.605, 0.60, 4, None,
         Verdict(False, "challenger auc 0.6050 vs champion v4 0.6000 (higher is better): better by 0.0050, "
                        "less than margin 0.0100", 0.005)),
        (AUC, 0.0, 0.60, 0.60, 4, None,
         Verdict(False, "challenger auc 0.6000 vs champion v4 0.6000 (higher is better): not better (by 0.0000)",
                 0.0)),
        (AUC, 0.01, 0.46, 0.62, 4, None,
         Verdict(False, "challenger auc 0.4600 vs champion v4 0.6200 (higher is better): not better (by -0.1600)",
                 -0.16)),
        (LOG_LOSS, 0.005, 0.20, 0.23, 2, None,
         Verdict(True, "challenger log_loss 0.2000 beats champion v2 0.2300 by 0.0300 >= margin 0.0050", 0.03)),
        (LOG_LOSS, 0.005, 0.25, 0.23, 2, None,
         Verdict(False, "challenger log_loss 0.2500 vs champion v2 0.2300 (lower is better): not better "
                        "(by -0.0200)", -0.02)),
        (AUC, 0.01, math.nan, 0.60, 4, None,
         Verdict(False, "challenger auc is undefined on the holdout (nan)", None)),
        (AUC, 0.01, 0.62, math.nan, 4, None,
         Verdict(False, "champion v4 auc is undefined on the holdout; kept it", None)),
        (AUC, 0.01, 0.62, None, 4, "LightGBMError: wrong number of features",
         Verdict(False, "champion v4 could not be scored on the holdout (LightGBMError: wrong number of "
                        "features); kept it: promote by hand if the challenger should replace it", None)),
    ],
    ids=["no-champion", "beats-margin", "below-margin", "tie-never-promotes", "worse", "lower-is-better",
         "lower-is-better-worse", "challenger-undefined", "champion-undefined", "champion-unscorable"],
)
def test_the_rule_promotes_only_past_the_margin_and_says_why(
    goal: MetricGoal, margin: float, challenger: float, champion: float | None, champion_version: int | None,
    error: str | None, expected: Verdict,
) -> None:
    verdict = decide(goal, margin, challenger, champion, champion_version=champion_version, champion_error=error)
    assert (verdict.promote, verdict.reason) == (expected.promote, expected.reason)
    if expected.improvement is None:
        assert verdict.improvement is None
    else:
        assert verdict.improvement == pytest.approx(expected.improvement)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": -0.1}, "margin must be a finite number >= 0, got -0.1"),
        ({"margin": math.inf}, "margin must be a finite number >= 0, got inf"),
        ({"holdout_fraction": 0.0}, "holdout_fraction must be between 0 and 1 (exclusive), got 0.0"),
        ({"holdout_fraction": 1.0}, "holdout_fraction must be between 0 and 1 (exclusive), got 1.0"),
    ],
)
def test_a_bad_policy_is_refused_with_its_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        RetrainPolicy(**kwargs)
    assert str(raised.value) == message


def test_a_metric_goal_needs_a_direction() -> None:
    with pytest.raises(ValueError, match=r"^direction must be 'higher' or 'lower', got 'up'$"):
        MetricGoal("auc", "up")  # type: ignore[arg-type]


def test_a_decision_becomes_version_tags_and_json() -> None:
    at = datetime(2026, 2, 1, 3, 0, tzinfo=UTC)
    decision = Decision(
        model="click", workflow_id="retrain:click:schedule:x", trigger="schedule", cause="x", outcome="rejected",
        reason="not better", metric="auc", direction="higher", margin=0.002, challenger_version=5,
        champion_version=4, challenger_value=0.5, champion_value=math.nan, improvement=None, decided_at=at,
        data=DataSummary(as_of=at, holdout_start=at, train_rows=10, holdout_rows=3, fingerprint="f" * 64),
        challenger_metrics={"auc": 0.5},
    )
    assert decision.tags() == {
        "retrain.outcome": "rejected", "retrain.reason": "not better", "retrain.metric": "auc",
        "retrain.direction": "higher", "retrain.margin": "0.002", "retrain.challenger_value": "0.5",
        "retrain.champion_version": "4", "retrain.champion_value": "nan", "retrain.improvement": "",
        "retrain.decided_at": "2026-02-01T03:00:00+00:00",
    }
    as_json = decision.to_dict()
    assert as_json["champion_value"] is None  # NaN is not JSON
    assert as_json["decided_at"] == "2026-02-01T03:00:00+00:00"
    assert as_json["data"] == {
        "as_of": "2026-02-01T03:00:00+00:00", "holdout_start": "2026-02-01T03:00:00+00:00", "train_rows": 10,
        "holdout_rows": 3, "fingerprint": "f" * 64,
    }
    assert not decision.promoted


def test_the_docstring_examples_run() -> None:
    assert doctest.testmod(retraining_decision, raise_on_error=True).attempted >= 2
