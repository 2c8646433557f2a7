"""Simulator-only measures: ring transactions caught, and review volume against rules.

The simulator's ground truth (``ground_truth/fraud_transactions.csv``) names every fraud's
pattern and ring, so on the test part we can ask what the issue asks:

* ``ring_recall_at_fpr_0.1pct``: the share of ring transactions scored above the score at
  which 0.1 % of the test part's legitimate transactions are flagged (the ROC reading, as
  ``recall_at_fpr_0.1pct``), and ``ring_recall_at_threshold`` at the threshold chosen on
  the validation window;
* ``review_reduction_vs_rules``: a rules-only desk flags transactions by how many classic
  rules fire (:data:`RULES`), most hits first. To catch as many frauds as our model catches
  at its validation threshold it must review ``rules_review_volume`` transactions (linear
  interpolation inside the last tied group); we review ``model_review_volume``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marketpilot.fraud.evaluate import EvalData
from marketpilot.fraud.features import FEATURES

__all__ = ["RULES", "rule_hits", "simulated_metrics"]

RULES: dict[str, tuple[str, str, float]] = {
    "new_account": ("account_age_days", "<", 7.0),
    "geo_mismatch": ("ip_ship_mismatch", ">=", 1.0),
    "user_burst": ("user_count_1h", ">=", 2.0),
    "shared_device": ("device_accounts", ">=", 2.0),
    "shared_instrument": ("instrument_accounts", ">=", 2.0),
    "unusual_amount": ("amount_z_user", ">", 3.0),
    "new_device": ("new_device", ">=", 1.0),
    "new_instrument": ("new_instrument", ">=", 1.0),
}


def rule_hits(X: np.ndarray) -> np.ndarray:
    hits = np.zeros(len(X))
    for column, op, value in RULES.values():
        x = X[:, FEATURES.index(column)]
        with np.errstate(invalid="ignore"):
            fired = x < value if op == "<" else (x >= value if op == ">=" else x > value)
        hits += np.where(np.isnan(x), False, fired)
    return hits


def _volume_to_catch(score: np.ndarray, labels: np.ndarray, target: int) -> float:
    """Transactions reviewed, most suspicious first, until `target` frauds are caught
    (ties reviewed in random order: linear interpolation inside the tied group)."""
    if target <= 0:
        return 0.0
    levels = np.unique(score)[::-1]
    volume, caught = 0.0, 0
    for level in levels:
        at = score == level
        frauds, rows = int(labels[at].sum()), int(at.sum())
        if caught + frauds >= target:
            return volume + rows * (target - caught) / max(frauds, 1)
        volume += rows
        caught += frauds
    return float("nan")  # the rules never catch that many


def simulated_metrics(data: EvalData, run: dict[str, Any]) -> dict[str, float]:
    import pandas as pd

    start, stop = run["test_slice"]
    labels = data.labels[start:stop]
    score = run["scores"]["marketpilot"]
    model = run["fraud_model"]
    truth = data.extra.get("truth")
    ids = data.ids[start:stop]
    ring = np.zeros(len(ids), dtype=bool)
    if isinstance(truth, pd.DataFrame) and len(truth):
        ring_ids = set(truth.loc[truth["pattern"] == "ring", "transaction_id"].astype(str))
        ring = np.isin(ids, list(ring_ids))
    neg = np.sort(score[labels == 0])
    at_fpr = neg[len(neg) - int(np.floor(0.001 * len(neg))) - 1] if len(neg) else np.inf
    flagged = score >= model.raw_threshold_
    caught = int(flagged[labels == 1].sum())
    rules_volume = _volume_to_catch(rule_hits(data.features[start:stop]), labels, caught)
    ours = int(flagged.sum())
    return {
        "ring_transactions_test": int(ring.sum()),
        "ring_recall_at_fpr_0.1pct": float((score[ring] > at_fpr).mean()) if ring.any() else float("nan"),
        "ring_recall_at_threshold": float(flagged[ring].mean()) if ring.any() else float("nan"),
        "frauds_caught_at_threshold": caught,
        "model_review_volume": ours,
        "rules_review_volume": float(rules_volume),
        "review_reduction_vs_rules": float(1 - ours / rules_volume) if rules_volume and rules_volume > 0
        else float("nan"),
    }
