"""The importer computes interaction ids in bulk exactly as the live API does one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from marketpilot.dataimport.kinds import digest_ids, iso_utc
from marketpilot.marketplace.interactions import interaction_id


def test_bulk_ids_equal_the_api_ids() -> None:
    base = datetime(2024, 1, 5, 10, 0, tzinfo=UTC)
    stamps = [base, base + timedelta(microseconds=1), base + timedelta(seconds=59, microseconds=999_999),
              datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    sessions = [None, "s1", "", "s:2"]
    iso = iso_utc(pa.array(stamps, pa.timestamp("us", tz="UTC"))).to_pylist()
    assert iso == [s.isoformat() for s in stamps]
    keys = [f"u1\x1fl1\x1fview\x1f{i}\x1f{s or ''}" for i, s in zip(iso, sessions, strict=True)]
    assert digest_ids(keys) == [interaction_id("u1", "l1", "view", t, s) for t, s in zip(stamps, sessions, strict=True)]
