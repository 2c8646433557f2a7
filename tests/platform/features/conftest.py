"""Fixtures of the feature-store tests: the online backends behind one parametrized fixture.

Redis tests use database 1 with a key prefix unique to the test, deleted afterwards, so
they share the real server with other suites safely.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry

from marketpilot.platform.features import (
    EmbeddedOnlineStore,
    Feature,
    FeatureRegistry,
    FeatureView,
    OnlineStore,
    RedisOnlineStore,
    float32,
    int64,
    int64_list,
    str_list,
)

REDIS_TEST_DB = 1


@pytest.fixture
def views() -> FeatureRegistry:
    return FeatureRegistry(
        [
            FeatureView(
                "user_stats",
                "user_id",
                [Feature("spend", float32), Feature("orders", int64), Feature("score", float32)],
                staleness_sla=timedelta(minutes=10),
            ),
            FeatureView(
                "user_history",
                "user_id",
                [
                    Feature("recent_items", str_list(4, width=12)),
                    Feature("recent_categories", int64_list(3)),
                    Feature("sessions", int64),
                ],
                staleness_sla=timedelta(hours=1),
            ),
        ]
    )


@pytest.fixture
def metrics() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def redis_test_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{REDIS_TEST_DB}"


@pytest.fixture
def redis_prefix(redis_test_url: str) -> Iterator[str]:
    prefix = f"test:feat:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_test_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


@pytest.fixture(params=["embedded", "embedded_sqlite", "redis"])
def store(
    request: pytest.FixtureRequest,
    views: FeatureRegistry,
    metrics: CollectorRegistry,
    tmp_path: Path,
) -> Iterator[OnlineStore]:
    backend: OnlineStore
    if request.param == "embedded":
        backend = EmbeddedOnlineStore(views, metrics=metrics)
    elif request.param == "embedded_sqlite":
        backend = EmbeddedOnlineStore(views, path=tmp_path / "features.sqlite", metrics=metrics)
    else:
        url = request.getfixturevalue("redis_test_url")
        prefix = request.getfixturevalue("redis_prefix")
        backend = RedisOnlineStore(url, views, prefix=prefix, metrics=metrics)
    yield backend
    backend.close()
