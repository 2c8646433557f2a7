"""The order workflow's fraud check backed by the fraud service: the model decides when one is
registered (one stored decision per order, shared with the fraud consumer's `o:<order>` id);
without any model the order rules decide and the reason says so."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fraud"))

from fraud_data import history  # noqa: E402

from marketpilot.fraud.evaluation_data import replay  # noqa: E402
from marketpilot.fraud.features import FEATURES, FeatureState  # noqa: E402
from marketpilot.fraud.model import FraudModel  # noqa: E402
from marketpilot.fraud.service import FraudService  # noqa: E402
from marketpilot.platform.db import Database  # noqa: E402
from marketpilot.workflows.base import OrderFacts, OrderLineFacts  # noqa: E402
from marketpilot.workflows.fraud_rules import RuleFraudCheck  # noqa: E402
from marketpilot.workflows.fraud_service_check import ServiceFraudCheck  # noqa: E402


def _order(order_id: str, total: int, user: str = "u1") -> OrderFacts:
    return OrderFacts(order_id, user, "s1", total, "EUR", "eu", "eu", (OrderLineFacts("l1", 1, total),))


@pytest.fixture(scope="module")
def model() -> FraudModel:
    requests, labels = history()
    x = replay(requests, labels, FeatureState(), labelled_until=len(requests))
    return FraudModel(FEATURES, rounds=40, mlp_hidden=(), iso_trees=30, target_fpr=0.01, block_fpr=0.002).fit(x, labels)


def test_without_a_registered_model_the_order_rules_decide(sqlite_db: Database) -> None:
    check = ServiceFraudCheck(FraudService(sqlite_db, model_loader=lambda: None),
                              RuleFraudCheck.with_blocklist(["mallory"]))
    small = check.check(_order("o1", 1_000))
    assert small.decision == "approve" and small.reason.startswith("no fraud model registered; rules:")
    assert check.check(_order("o2", 1_000, user="mallory")).decision == "block"


def test_with_a_model_the_service_decides_once_per_order(sqlite_db: Database, model: FraudModel) -> None:
    service = FraudService(sqlite_db, model_loader=lambda: (model, "7"))
    check = ServiceFraudCheck(service)
    first = check.check(_order("o3", 4_999))
    assert first.decision in ("approve", "review", "block") and first.score is not None
    assert "7" in first.reason and "score" in first.reason
    again = check.check(_order("o3", 4_999))
    assert (again.decision, again.score) == (first.decision, first.score)  # the stored decision
