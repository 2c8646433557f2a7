"""`marketpilot evaluate fraud --dataset PATH --json --out DIR` on a small labelled history:
the JSON shape of the issue, and metrics that scores.csv reproduces independently."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from fraud_data import history
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from marketpilot.cli import app

SYSTEMS = {"marketpilot", "logreg", "isolation_forest", "lightgbm_raw"}
METRICS = {"auc_roc", "auc_pr", "recall_at_fpr_0.1pct", "threshold_fpr", "threshold_recall"}


def test_evaluate_fraud_on_a_path(tmp_path: Path) -> None:
    requests, labels = history(n_legit=2500, rings=10)
    pd.DataFrame({
        "transaction_id": [r.transaction_id for r in requests], "user_id": [r.user_id for r in requests],
        "amount_minor": [r.amount_minor for r in requests], "currency": "EUR",
        "instrument_fingerprint": [r.instrument_fingerprint for r in requests],
        "device_id": [r.device_id for r in requests], "ip": [r.ip for r in requests],
        "email_domain": [r.email_domain for r in requests], "ip_region": [r.ip_region for r in requests],
        "shipping_region": [r.shipping_region for r in requests],
        "timestamp": [r.at().isoformat() for r in requests], "label": labels,
    }).to_csv(tmp_path / "transactions.csv", index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "fraud", "--dataset", str(tmp_path), "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dataset"] == str(tmp_path)
    assert "time-ordered" in report["protocol"]["split"]
    assert set(report["results"]) == SYSTEMS
    assert all(set(v) == METRICS for v in report["results"].values())
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores.system) == SYSTEMS
    test_rows = report["protocol"]["rows"]["test"]
    for system, g in scores.groupby("system"):
        assert len(g) == test_rows
        assert abs(roc_auc_score(g.label, g.score) - report["results"][system]["auc_roc"]) < 1e-9
    # the test part is the latest 20 %: its ids are the last rows in time order
    assert list(scores[scores.system == "logreg"].id) == [r.transaction_id for r in requests[-test_rows:]]
    assert report["results"]["marketpilot"]["auc_roc"] > 0.95


def test_unknown_dataset_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "fraud", "--dataset", str(tmp_path / "missing")])
    assert result.exit_code == 2
