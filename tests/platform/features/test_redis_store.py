"""What only the Redis store does: one round trip per read, compact keys, expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
import redis
from prometheus_client import CollectorRegistry

from marketpilot.platform.features import Feature, FeatureView, RedisOnlineStore

T0 = 1_700_000_000_000
VIEW = FeatureView("rs", "user_id", [Feature(f"f{i}") for i in range(20)], timedelta(hours=1))


class CountingConnection(redis.Connection):
    """A real connection that counts what it sends: one packed send is one round trip."""

    sends = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def counting_client(redis_test_url: str) -> Iterator[redis.Redis]:
    pool = redis.ConnectionPool.from_url(redis_test_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    yield client
    client.close()
    pool.disconnect()


def twenty(n: int) -> dict[str, np.ndarray]:
    return {f"f{i}": np.arange(n, dtype=np.float64) + i for i in range(20)}


def test_a_read_of_many_entities_is_one_round_trip(counting_client: redis.Redis, redis_prefix: str) -> None:
    store = RedisOnlineStore(counting_client, prefix=redis_prefix, metrics=CollectorRegistry())
    ids = [f"u{i}" for i in range(500)]
    store.write(VIEW, ids, twenty(500), T0)
    store.read(VIEW, ids[:1], now=T0)  # the first command opens the connection
    before = CountingConnection.sends
    batch = store.read(VIEW, ids + ["ghost"], now=T0)
    assert CountingConnection.sends - before == 1
    assert batch.values.shape == (501, 20)
    np.testing.assert_array_equal(batch.values[:500, 3], np.arange(500) + 3)


def test_a_large_write_is_one_round_trip_too(counting_client: redis.Redis, redis_prefix: str) -> None:
    store = RedisOnlineStore(counting_client, prefix=redis_prefix, metrics=CollectorRegistry())
    store.write(VIEW, ["warm"], twenty(1), T0)  # connects and loads the script
    before = CountingConnection.sends
    assert store.write(VIEW, [f"u{i}" for i in range(2500)], twenty(2500), T0) == 2500
    assert CountingConnection.sends - before == 1


def test_writes_recover_when_redis_forgets_the_script(redis_test_url: str, redis_prefix: str) -> None:
    store = RedisOnlineStore(redis_test_url, prefix=redis_prefix, metrics=CollectorRegistry())
    store.write(VIEW, ["u1"], twenty(1), T0)
    store._sha = "0" * 40  # as after a server restart: the cached sha is unknown to the server
    assert store.write(VIEW, ["u1"], twenty(1), T0 + 1) == 1
    assert store.read(VIEW, ["u1"], now=T0).event_time[0] == T0 + 1


def test_a_row_is_one_key_of_packed_float32s(redis_test_url: str, redis_prefix: str) -> None:
    store = RedisOnlineStore(redis_test_url, prefix=redis_prefix, metrics=CollectorRegistry())
    store.write(VIEW, ["u1"], twenty(1), T0)
    raw = redis.Redis.from_url(redis_test_url).get(f"{redis_prefix}rs:{VIEW.signature}:u1")
    assert raw is not None and len(raw) == 8 + 20 * 4


def test_key_ttl_expires_idle_entities(redis_test_url: str, redis_prefix: str) -> None:
    store = RedisOnlineStore(redis_test_url, prefix=redis_prefix, key_ttl=timedelta(hours=2), metrics=CollectorRegistry())
    store.write(VIEW, ["u1"], twenty(1), T0)
    ttl = redis.Redis.from_url(redis_test_url).pttl(f"{redis_prefix}rs:{VIEW.signature}:u1")
    assert 0 < ttl <= 2 * 3_600_000


def test_delete_view_removes_its_rows_only(redis_test_url: str, redis_prefix: str) -> None:
    store = RedisOnlineStore(redis_test_url, prefix=redis_prefix, metrics=CollectorRegistry())
    other = FeatureView("rs2", "user_id", [Feature("x")], timedelta(hours=1))
    store.write(VIEW, ["a", "b"], twenty(2), T0)
    store.write(other, ["a"], {"x": [1.0]}, T0)
    assert store.delete_view(VIEW) == 2
    assert not store.read(VIEW, ["a"], now=T0).present[0]
    assert store.read(other, ["a"], now=T0).present[0]


def test_a_text_mode_client_is_refused(redis_test_url: str) -> None:
    with pytest.raises(ValueError, match="needs a client with decode_responses=False"):
        RedisOnlineStore(redis.Redis.from_url(redis_test_url, decode_responses=True))
