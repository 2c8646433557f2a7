"""Point-in-time training sets: no value from after a label's time is ever joined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.features import Feature, FeatureView, FileSource, TableSource, float32, int64
from marketpilot.platform.features.offline import FeatureTable, build_training_set

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


SPEND = FeatureView("user_spend", "user_id", [Feature("spend", float32), Feature("orders", int64)], timedelta(days=1))
LISTING = FeatureView("listing_pop", "listing_id", [Feature("views", int64)], timedelta(days=1))


def spend_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2"],
            "event_time": [at(0), at(5), at(10), at(1), at(30)],
            "spend": [1.0, 2.0, 999.0, 10.0, 20.0],
            "orders": [1, 2, 3, 1, 2],
        }
    )


def test_a_value_from_after_the_label_time_is_never_joined() -> None:
    # u1's row at hour 10 (spend 999) lies in the future of every u1 label below
    spine = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u3"],
            "label_time": [at(4.99), at(5), at(9.999), at(29), at(100)],
            "label": [0, 1, 0, 1, 0],
        }
    )
    out = build_training_set(spine, [FeatureTable(SPEND, spend_history())], with_event_times=True).to_pandas()
    assert out["spend"].tolist()[:4] == [1.0, 2.0, 2.0, 10.0]  # latest at-or-before each label
    assert np.isnan(out["spend"].iloc[4])  # an entity with no history
    assert 999.0 not in out["spend"].tolist()
    joined = out["user_spend__event_time"].dropna()
    label_ms = spine["label_time"].map(lambda d: d.timestamp() * 1000)
    assert (joined <= label_ms[joined.index]).all()


def test_every_spine_row_is_kept_in_spine_order_with_its_columns() -> None:
    spine = pd.DataFrame(
        {"user_id": ["u2", "u1", "u2", "u1"], "label_time": [at(40), at(6), at(2), at(6)], "label": [1, 2, 3, 4],
         "weight": [0.5, 1.0, 1.5, 2.0]}
    )
    out = build_training_set(spine, [FeatureTable(SPEND, spend_history())]).to_pandas()
    assert out.columns.tolist() == ["user_id", "label_time", "label", "weight", "spend", "orders"]
    assert out["label"].tolist() == [1, 2, 3, 4]
    assert out["spend"].tolist() == [20.0, 2.0, 10.0, 2.0]


def test_ttl_nulls_values_too_old_at_the_label_time() -> None:
    spine = pd.DataFrame({"user_id": ["u1", "u1"], "label_time": [at(6), at(9)], "label": [0, 1]})
    out = build_training_set(spine, [FeatureTable(SPEND, spend_history(), ttl=timedelta(hours=2))]).to_pandas()
    assert out["spend"].iloc[0] == 2.0  # 1 h old
    assert np.isnan(out["spend"].iloc[1])  # 4 h old: past the TTL
    assert pd.isna(out["orders"].iloc[1])


def test_several_views_join_on_their_own_entities(tmp_path: Path) -> None:
    hour = 3_600_000
    t0_ms = int(T0.timestamp() * 1000)
    path = tmp_path / "pop.parquet"  # listing a's 50 views are written at hour 7
    pq.write_table(
        pa.table({"listing_id": ["a", "a", "b"], "ts": pa.array([t0_ms, t0_ms + 7 * hour, t0_ms]),
                  "views": [10, 50, 7]}),
        path,
    )
    spine = pa.table({"user_id": ["u1", "u2"], "listing_id": ["a", "b"],
                      "ts": pa.array([t0_ms + 6 * hour, t0_ms + 2 * hour], pa.int64())})
    pop = FeatureView("listing_pop", "listing_id", [Feature("views", int64)], timedelta(days=1),
                        source=FileSource(path, "listing_id", "ts"))
    out = build_training_set(
        spine,
        [FeatureTable(SPEND, spend_history()), pop],
        time_column="ts",
        full_names=True,
    ).to_pandas()
    assert out["user_spend__spend"].tolist() == [2.0, 10.0]
    assert out["listing_pop__views"].tolist() == [10, 7]  # not a's 50: written after the label


def test_a_database_table_is_a_feature_source(db: Database) -> None:
    with db.session() as s:
        s.add_all([
            t.Sale(id="s1", listing_id="L1", region="eu", date=at(0), quantity=3.0),
            t.Sale(id="s2", listing_id="L1", region="eu", date=at(24), quantity=8.0),
        ])
    sales = FeatureView("daily_sales", "listing_id", [Feature("quantity", float32)], timedelta(days=2),
                        source=TableSource("sales", "listing_id", "date"))
    spine = pd.DataFrame({"listing_id": ["L1", "L1"], "label_time": [at(12), at(24)]})
    out = build_training_set(spine, [sales], db=db).to_pandas()
    assert out["quantity"].tolist() == [3.0, 8.0]


@pytest.mark.parametrize(
    ("spine", "tables", "message"),
    [
        (pd.DataFrame({"user_id": ["u1"], "when": [T0]}), [SPEND], "spine_raw has no time column 'label_time'"),
        (pd.DataFrame({"user": ["u1"], "label_time": [T0]}), [SPEND], "the spine has no column 'user_id'"),
        (pd.DataFrame({"user_id": ["u1"], "label_time": ["yesterday"]}), [SPEND], "expected a timestamp or epoch ms"),
        (pd.DataFrame({"user_id": ["u1"], "label_time": [T0]}), [SPEND, SPEND], "column 'spend' would appear twice"),
        (pd.DataFrame({"listing_id": ["u1"], "label_time": [T0]}), [LISTING], "view 'listing_pop' has no offline source"),
    ],
)
def test_a_bad_request_says_what_is_wrong(spine: pd.DataFrame, tables: list[FeatureView], message: str) -> None:
    resolved = [FeatureTable(v, spend_history()) if v is SPEND else v for v in tables]
    with pytest.raises(ValueError, match=message):
        build_training_set(spine, resolved)
