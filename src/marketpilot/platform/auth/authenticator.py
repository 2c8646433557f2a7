"""Turn a presented key into a principal, with a small in-process cache.

Verified keys are kept in a bounded LRU for `ttl` seconds, so a busy client costs one SHA-256
and a dict lookup per request instead of a database read. The price is revocation latency:
a key revoked elsewhere (CLI, another replica) is still accepted by this process for at most
`ttl` seconds; a key revoked through this process's API is dropped at once (:meth:`forget`).
Unknown keys are not cached, so a flood of garbage keys cannot evict good entries.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from marketpilot.platform.auth.keys import verify_key
from marketpilot.platform.auth.principal import Principal
from marketpilot.platform.db import Database

DEFAULT_TTL_SECONDS = 30.0
DEFAULT_MAX_ENTRIES = 10_000


class Authenticator:
    def __init__(
        self,
        db: Database,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, key: str) -> Principal | None:
        """The principal for `key` if it was verified less than `ttl` ago (no I/O)."""
        digest = hashlib.sha256(key.encode()).digest()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None:
                return None
            principal, expires = hit
            if expires <= self._clock():
                del self._cache[digest]
                return None
            self._cache.move_to_end(digest)
            return principal

    def verify(self, key: str) -> Principal | None:
        """Cached principal, or a database check whose success is cached."""
        principal = self.cached(key)
        if principal is not None:
            return principal
        principal = verify_key(self.db, key)
        if principal is not None and self.ttl > 0:
            digest = hashlib.sha256(key.encode()).digest()
            with self._lock:
                self._cache[digest] = (principal, self._clock() + self.ttl)
                self._cache.move_to_end(digest)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop every cached entry of a key (called when this process revokes it)."""
        with self._lock:
            for digest in [d for d, (p, _) in self._cache.items() if p.key_id == key_id]:
                del self._cache[digest]

    def __len__(self) -> int:
        return len(self._cache)
