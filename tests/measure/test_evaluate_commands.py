"""`marketpilot evaluate ope` and `evaluate holdout` print the documented JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketpilot.cli import app

runner = CliRunner()


def test_evaluate_ope_on_obd_prints_the_issue_shape_and_meets_the_target() -> None:
    # `make test` installs the dataset first (`make datasets`); without it this fails, never skips.
    result = runner.invoke(app, ["evaluate", "ope", "--dataset", "obd", "--campaign", "all", "--json",
                                 "--n-bootstrap", "200"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"dataset", "protocol", "on_policy_value", "results"}
    assert payload["on_policy_value"] == pytest.approx(0.0042)
    assert list(payload["results"]) == ["dm", "ips", "snips", "dr", "sndr", "switch_dr"]
    for r in payload["results"].values():
        assert set(r) == {"estimate", "relative_error", "ci_low", "ci_high"}
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
    assert min(r["relative_error"] for r in payload["results"].values()) <= 0.157


def test_evaluate_ope_refuses_unknown_inputs() -> None:
    result = runner.invoke(app, ["evaluate", "ope", "--dataset", "movielens", "--json"])
    assert result.exit_code == 2 and "dataset must be one of" in result.output
    result = runner.invoke(app, ["evaluate", "ope", "--campaign", "kids", "--json"])
    assert result.exit_code == 2 and "campaign must be one of" in result.output


def test_evaluate_holdout_on_a_panel_file(tmp_path: Path) -> None:
    lines = ["region,date,gmv"]
    for r, size in enumerate([100, 80, 60, 40, 30, 20]):
        for d in range(1, 21):
            lift = 1.1 if r % 2 == 0 and d >= 11 else 1.0
            noise = 1 + 0.02 * ((r * 7 + d * 3) % 5 - 2)
            lines.append(f"R{r},2026-01-{d:02d},{size * lift * noise:.4f}")
    (tmp_path / "panel.csv").write_text("\n".join(lines))
    result = runner.invoke(app, ["evaluate", "holdout", "--panel", str(tmp_path / "panel.csv"),
                                 "--treated", "R0,R2,R4", "--start", "2026-01-11", "--json"])
    assert result.exit_code == 0, result.output
    est = json.loads(result.stdout)["results"]["marketpilot"]
    assert est["relative_low"] <= 0.1 <= est["relative_high"]
    assert est["relative_uplift"] == pytest.approx(0.1, abs=0.03)
    bad = runner.invoke(app, ["evaluate", "holdout", "--panel", str(tmp_path / "panel.csv"),
                              "--treated", "R9", "--start", "2026-01-11"])
    assert bad.exit_code == 2 and "unknown regions" in bad.output


def test_evaluate_holdout_on_the_simulator(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "holdout", "--runs", "20", "--listings", "500", "--users", "5000",
                                 "--days", "14", "--post-start", "7", "--uplift", "0.1",
                                 "--sim-dir", str(tmp_path / "sim"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["results"]) == {"marketpilot", "post_only"}
    assert payload["results"]["marketpilot"]["coverage"] >= 0.8
