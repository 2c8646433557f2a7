from __future__ import annotations

import pytest

from marketpilot.platform.auth import Authenticator, Role, create_key, revoke_key
from marketpilot.platform.db import Database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_verified_key_is_served_from_cache_until_its_ttl(db: Database) -> None:
    clock = Clock()
    auth = Authenticator(db, ttl=30, clock=clock)
    key_id, key = create_key(db, Role.SERVICE)
    assert auth.cached(key) is None
    assert auth.verify(key) is not None
    revoke_key(db, key_id)
    clock.now += 29
    assert auth.verify(key) is not None  # revocation not yet seen: bounded by the TTL
    clock.now += 2
    assert auth.verify(key) is None


def test_forget_drops_a_key_at_once(db: Database) -> None:
    auth = Authenticator(db)
    key_id, key = create_key(db, Role.OPERATOR)
    auth.verify(key)
    revoke_key(db, key_id)
    auth.forget(key_id)
    assert auth.verify(key) is None


def test_the_cache_is_bounded_least_recently_used_first(db: Database) -> None:
    auth = Authenticator(db, max_entries=2)
    keys = [create_key(db, Role.SERVICE)[1] for _ in range(3)]
    auth.verify(keys[0])
    auth.verify(keys[1])
    auth.cached(keys[0])  # touch: keys[1] is now the oldest
    auth.verify(keys[2])
    assert len(auth) == 2
    assert auth.cached(keys[0]) is not None and auth.cached(keys[1]) is None


def test_unknown_keys_are_not_cached(db: Database) -> None:
    auth = Authenticator(db)
    assert auth.verify("mp_000000000000_" + "A" * 43) is None
    assert len(auth) == 0


def test_nonsense_settings_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="max_entries >= 1"):
        Authenticator(db, max_entries=0)
