"""A fraud model fitted once per session on `fraud_data.history()` (seconds, not minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fraud_data import Fitted, history  # noqa: E402

from marketpilot.fraud.evaluation_data import replay  # noqa: E402
from marketpilot.fraud.features import FEATURES, FeatureState  # noqa: E402
from marketpilot.fraud.model import FraudModel  # noqa: E402


@pytest.fixture(scope="session")
def fitted() -> Fitted:
    requests, labels = history()
    X = replay(requests, labels, FeatureState(), labelled_until=len(requests))
    model = FraudModel(FEATURES, rounds=60, mlp_hidden=(), iso_trees=50, target_fpr=0.01, block_fpr=0.002)
    return Fitted(model.fit(X, labels), requests, labels, X)
