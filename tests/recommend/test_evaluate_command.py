"""`marketpilot evaluate recommend` on an interactions file: the JSON shape, the files of
`--out`, and that an independent recomputation from those files agrees with the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from marketpilot.cli import app
from marketpilot.recommend.evaluation.command import strict_json, uncertainty_block

sys.path.insert(0, str(Path(__file__).parent))
from planted import planted  # noqa: E402

CHECK = Path("/work/shared/checks/ranking_metrics.py")
SYSTEMS = {"marketpilot", "popular", "als", "ease"}
METRICS = {"ndcg@10", "precision@10", "recall@10", "map@10", "coverage"}


def test_evaluate_recommend_prints_every_system_and_writes_recomputable_files(tmp_path: Path) -> None:
    frame, _, _ = planted(per_user=10)
    path = tmp_path / "interactions.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "recommend", "--dataset", str(path), "--protocol",
                                      "ms-recommenders", "--k", "10", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dataset"] == str(path) and report["protocol"] == "ms-recommenders"
    assert set(report["results"]) == SYSTEMS
    for metrics in report["results"].values():
        assert set(metrics) == METRICS
    # planted tastes: anything personal beats most-popular by far
    assert report["results"]["marketpilot"]["ndcg@10"] > report["results"]["popular"]["ndcg@10"] + 0.1
    spread = report["uncertainty"]
    assert set(spread["ndcg@10_se"]) == SYSTEMS and all(0 < se < 0.1 for se in spread["ndcg@10_se"].values())
    leads = spread["marketpilot_ndcg@10_lead"]
    assert set(leads) == SYSTEMS - {"marketpilot"}
    for name, lead in leads.items():  # the paired lead is the difference of the reported means
        gap = report["results"]["marketpilot"]["ndcg@10"] - report["results"][name]["ndcg@10"]
        assert abs(lead["lead"] - gap) < 1e-4 and lead["se"] > 0
    assert leads["popular"]["lead"] > 3 * leads["popular"]["se"]
    train, test = pd.read_csv(out / "train.csv"), pd.read_csv(out / "test.csv")
    assert len(train) + len(test) == len(frame)
    assert list(train.columns) == list(frame.columns)
    recs = pd.read_csv(out / "recommendations.csv")
    assert set(recs["system"]) == SYSTEMS and recs["rank"].between(1, 10).all()
    if CHECK.exists():
        (tmp_path / "result.json").write_text(json.dumps(report))
        check = subprocess.run([sys.executable, str(CHECK), str(out), str(tmp_path / "result.json")],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_leave_last_out_holds_out_one_pair_per_user(tmp_path: Path) -> None:
    frame, _, _ = planted(per_user=6)
    path = tmp_path / "interactions.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "recommend", "--dataset", str(path), "--protocol",
                                      "leave-last-out", "--out", str(out)])
    assert result.exit_code == 0, result.output
    test = pd.read_csv(out / "test.csv")
    assert test.groupby("user_id").size().eq(1).all()


def test_a_missing_file_and_an_unknown_protocol_are_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["evaluate", "recommend", "--dataset", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    assert "no such data set or file" in missing.output
    bad = runner.invoke(app, ["evaluate", "recommend", "--protocol", "kfold"])
    assert bad.exit_code == 2
    assert "unknown protocol 'kfold'" in bad.output


def test_one_user_with_a_test_item_prints_null_standard_errors_not_nan() -> None:
    # one user cannot give a standard error; the JSON must still parse under a strict parser
    per_user = {name: np.array([0.5]) for name in ("popular", "als", "ease", "marketpilot")}
    block = uncertainty_block(per_user, 10)
    text = json.dumps(strict_json({"uncertainty": block, "pipeline": {"stage1_lead_se": float("nan")}}),
                      allow_nan=False)
    parsed = json.loads(text, parse_constant=lambda word: pytest.fail(f"non-JSON constant {word}"))
    assert parsed["uncertainty"]["ndcg@10_se"] == dict.fromkeys(per_user)
    assert parsed["uncertainty"]["marketpilot_ndcg@10_lead"]["ease"] == {"lead": 0.0, "se": None}
    assert parsed["pipeline"]["stage1_lead_se"] is None


def test_strict_json_keeps_finite_figures_and_nests() -> None:
    value = {"a": [1.5, float("inf"), {"b": np.float64("nan")}], "c": (2, "x"), "d": np.float64(0.25)}
    assert strict_json(value) == {"a": [1.5, None, {"b": None}], "c": [2, "x"], "d": 0.25}
