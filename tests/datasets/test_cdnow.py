from dataclasses import replace

import numpy as np
import pytest

from marketpilot.datasets import DatasetNotInstalled, cdnow


@pytest.fixture(scope="module")
def data() -> cdnow.CDNOW:
    return cdnow.load()


def test_cdnow_has_69659_transactions_of_23570_customers(data):
    assert len(data) == 69_659
    assert data.n_customers == 23_570
    assert data.date.min() == np.datetime64("1997-01-01") and data.date.max() == np.datetime64("1998-06-30")
    assert data.quantity.min() >= 1 and data.amount.min() >= 0
    assert (data.customer_id[0], data.quantity[0], data.amount[0]) == (1, 1, 11.77)


def test_cdnow_converts_to_the_orders_schema(data, follows_schema):
    orders = cdnow.to_orders(data)
    follows_schema(orders, "orders")
    assert len(orders) == 69_659 and orders["order_id"].is_unique
    assert orders["user_id"].nunique() == 23_570
    assert (orders["listing_id"] == cdnow.LISTING_ID).all()
    assert (orders["quantity"].to_numpy() == data.quantity).all()
    totals = orders["quantity"].to_numpy() * orders["unit_price_minor"].to_numpy()
    assert np.abs(totals - np.round(data.amount * 100)).max() <= data.quantity.max() / 2


def test_cdnow_converts_to_daily_sales(data, follows_schema):
    sales = cdnow.to_sales(data)
    follows_schema(sales, "sales")
    assert len(sales) == 546  # every day from 1997-01-01 to 1998-06-30
    assert sales["quantity"].sum() == data.quantity.sum()
    assert not sales.duplicated(["listing_id", "region", "date"]).any()


def test_cdnow_missing_package_says_what_to_install():
    with pytest.raises(DatasetNotInstalled, match=r"pip install --no-deps Lifetimes==0\.11\.3"):
        cdnow.load(replace(cdnow.SOURCE, import_name="marketpilot_no_such_package"))
