"""Automation rate on the simulator's order stream: the share of orders the order workflow
finishes with no human step. Only a fraud `review` puts a person in the loop (blocks and
approvals are automatic), so it is measured by running the workflow's fraud check over every
simulated order, as the fraud step does."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from marketpilot.fraud.evaluate import TEST_FRACTION
from marketpilot.fraud.evaluation_data import from_directory
from marketpilot.fraud.features import FEATURES
from marketpilot.fraud.model import FraudModel
from marketpilot.simulate import SimulationConfig, simulate
from marketpilot.workflows.base import OrderFacts, OrderLineFacts
from marketpilot.workflows.fraud_rules import RuleFraudCheck


def _orders(path: Path) -> list[OrderFacts]:
    lines: dict[str, list[dict[str, str]]] = defaultdict(list)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            lines[row["order_id"]].append(row)
    out = []
    for order_id, rows in lines.items():
        facts = tuple(OrderLineFacts(r["listing_id"], int(r["quantity"]), int(r["unit_price_minor"])) for r in rows)
        out.append(OrderFacts(order_id=order_id, user_id=rows[0]["user_id"], seller_id=rows[0]["seller_id"],
                              total_minor=sum(f.quantity * f.unit_price_minor for f in facts),
                              currency=rows[0]["currency"], shipping_region=rows[0]["shipping_region"],
                              origin_region=None, lines=facts))
    return out


def test_at_least_95_percent_of_simulated_orders_need_no_human(tmp_path: Path) -> None:
    simulate(SimulationConfig(listings=1_000, users=2_000, days=14, seed=3), tmp_path)
    orders = _orders(tmp_path / "orders.csv")
    assert len(orders) > 300
    check = RuleFraudCheck()
    decisions = [check.check(o).decision for o in orders]
    automated = sum(1 for d in decisions if d != "review") / len(decisions)
    assert automated >= 0.95, f"automation rate {automated:.3f}"


def test_with_the_trained_fraud_model_at_least_95_percent_of_orders_need_no_human(tmp_path: Path) -> None:
    """The same measure with the fraud model the fraud step uses once one is registered,
    trained on the earlier 80 % of the simulator's payment attempts (5 % fraud, rings
    included, so that the test part holds enough frauds to judge) and deciding the later 20 % at its own review and block thresholds. A review is
    the only human step; the model must still flag most frauds, or automation would be free."""
    simulate(SimulationConfig(listings=1_000, users=12_000, days=28, seed=3, fraud_rate=0.05), tmp_path)
    data = from_directory(tmp_path, name="simulated")
    cut = len(data.labels) - int(np.ceil(len(data.labels) * TEST_FRACTION))
    model = FraudModel(FEATURES, rounds=200, mlp_hidden=()).fit(data.features[:cut], data.labels[:cut])
    raw, labels = model.raw_score(data.features[cut:]), data.labels[cut:]
    review = (raw >= model.raw_threshold_) & (raw < model.raw_block_threshold_)
    flagged = raw >= model.raw_threshold_
    assert labels.sum() >= 30 and len(labels) > 1_000
    automated = 1.0 - review.mean()
    caught = flagged[labels == 1].mean()
    assert automated >= 0.95, f"automation rate {automated:.4f}"
    assert caught >= 0.8, f"frauds flagged {caught:.3f}"
