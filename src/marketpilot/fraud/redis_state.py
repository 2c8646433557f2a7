"""The fraud feature state on Redis, shared by every API replica (distributed profile).

:class:`RedisFeatureState` computes exactly the features of
:class:`~marketpilot.fraud.features.FeatureState` (the same names, windows, label delay and
ring rule; ``tests/fraud/test_redis_state.py`` replays one history through both and compares
every value), but keeps what it remembers in Redis, so a velocity burst spread over several
replicas is seen by each of them at once.

One decision is one round trip: a Lua script releases the labels that are due, reads the
request's features and folds the request in, atomically, so two replicas deciding
attempts of the same card at the same moment still count each other. Lua rather than
client-side pipelining because the ring features need the union-find's roots before they can
read the members, and the label release and the velocity eviction are read-modify-write.

Layout (``prefix`` default ``mp:fraud:``; every key of one state shares it):

======================  ===================================================================
``v:{kind}:{key}``      hash of event-time minute buckets, fields ``c{bucket}`` (count) and
                        ``a{bucket}`` (amount), plus ``latest`` (ms); expires a day after
                        its last write
``u:{user}``            hash: ``n``, ``mean``, ``m2`` (Welford over log amounts),
                        ``created`` (ms), ``home`` (region)
``ui:{user}``           set of the user's instruments; ``ud:{user}`` devices
``a:{kind}:{key}``      set of accounts seen on an instrument, device or IP
``rp``, ``rm:{root}``   ring union-find: parent of every node (``a:{user}``, ``i:{id}``),
                        the accounts of each component root
``rep:{kind}``          reputation list
``seen:{kind}``         hash: confirmed frauds per identifier (label delay honoured);
                        ``dtx`` attempts per e-mail domain
``pending``, ``pseq``   labels waiting for their delay (sorted by when they count)
``obs:{transaction}``   time and keys of an observed attempt, for its label (expires after
                        ``observed_ttl``)
======================  ===================================================================

Scripts build key names from the prefix, so the state needs a single Redis primary (with
replicas), as the distributed profile runs it; it is not Redis Cluster-safe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
import redis
from redis.typing import EncodableT, FieldT

from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.features import (
    DEFAULT_LABEL_DELAY,
    DOMAIN_PRIOR,
    FEATURES,
    INDEX,
    KEY_KINDS,
    NEW_ACCOUNT,
    REPUTATION_KINDS,
    WINDOWS,
    fill_request_features,
    major_amount,
    request_keys,
)
from marketpilot.platform.features import to_ms

__all__ = ["RedisFeatureState"]

DEFAULT_PREFIX = "mp:fraud:"
BUCKET = timedelta(minutes=1)
_BUCKET_MS = BUCKET // timedelta(milliseconds=1)
_SPANS = tuple(w // BUCKET for w in WINDOWS)
_VELOCITY_TTL_MS = int((max(WINDOWS) + timedelta(hours=1)) / timedelta(milliseconds=1))

# ARGV layout shared by the scripts: prefix, at (ms), user, instrument, device, ip, email
# domain ('' when absent); then the script's own arguments.
_HEADER = """
local P = ARGV[1]
local at = tonumber(ARGV[2])
local ids = {user = ARGV[3], instrument = ARGV[4], device = ARGV[5], ip = ARGV[6], email_domain = ARGV[7]}
local user = ids.user
local KINDS = {'user', 'instrument', 'device', 'ip', 'email_domain'}
local function fmt(v) return string.format('%.17g', v) end
local function find(node)
    local p = redis.call('HGET', P .. 'rp', node)
    if not p then return node end
    while p ~= node do
        node = p
        p = redis.call('HGET', P .. 'rp', node)
    end
    return node
end
"""

# Extra ARGV: bucket ms, span 1 (buckets), span 2, new-account ms.
_READ = """
local bucket, span1, span2, new_ms = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local due = redis.call('ZRANGEBYSCORE', P .. 'pending', '-inf', at)
if #due > 0 then
    for _, member in ipairs(due) do
        local keys = cjson.decode(string.sub(member, string.find(member, '|', 1, true) + 1))
        for _, kind in ipairs({'instrument', 'device', 'ip', 'email_domain'}) do
            if keys[kind] then redis.call('HINCRBY', P .. 'seen:' .. kind, keys[kind], 1) end
        end
    end
    redis.call('ZREMRANGEBYSCORE', P .. 'pending', '-inf', at)
end
local out = redis.call('HMGET', P .. 'u:' .. user, 'n', 'mean', 'm2', 'created', 'home')
out[6] = ids.instrument ~= '' and redis.call('SISMEMBER', P .. 'ui:' .. user, ids.instrument) or -1
out[7] = ids.device ~= '' and redis.call('SISMEMBER', P .. 'ud:' .. user, ids.device) or -1
local at_bucket = math.floor(at / bucket)
for _, kind in ipairs(KINDS) do
    local c1, c2, s2 = -1, -1, 0
    if ids[kind] ~= '' then
        c1, c2 = 0, 0
        local h = redis.call('HGETALL', P .. 'v:' .. kind .. ':' .. ids[kind])
        for i = 1, #h, 2 do
            local tag = string.sub(h[i], 1, 1)
            if tag == 'c' or tag == 'a' then
                local age = at_bucket - tonumber(string.sub(h[i], 2))
                local v = tonumber(h[i + 1])
                if tag == 'c' then
                    if age >= 0 and age < span1 then c1 = c1 + v end
                    if age >= 0 and age < span2 then c2 = c2 + v end
                elseif age >= 0 and age < span2 then
                    s2 = s2 + v
                end
            end
        end
    end
    table.insert(out, c1)
    table.insert(out, c2)
    table.insert(out, fmt(s2))
end
for _, kind in ipairs({'instrument', 'device', 'ip'}) do
    local n = -1
    if ids[kind] ~= '' then
        local key = P .. 'a:' .. kind .. ':' .. ids[kind]
        n = redis.call('SCARD', key)
        if n == 0 then n = 1 elseif redis.call('SISMEMBER', key, user) == 0 then n = n + 1 end
    end
    table.insert(out, n)
end
local roots = {[find('a:' .. user)] = true}
for _, kind in ipairs({'instrument', 'device'}) do
    if ids[kind] ~= '' then roots[find('i:' .. ids[kind])] = true end
end
local members = {[user] = true}
for root, _ in pairs(roots) do
    for _, m in ipairs(redis.call('SMEMBERS', P .. 'rm:' .. root)) do members[m] = true end
end
local size, young = 0, 0
for m, _ in pairs(members) do
    size = size + 1
    local created = redis.call('HGET', P .. 'u:' .. m, 'created')
    if created and at - tonumber(created) < new_ms then young = young + 1 end
end
table.insert(out, size)
table.insert(out, young)
for _, kind in ipairs({'ip', 'device', 'email_domain', 'instrument'}) do
    table.insert(out, ids[kind] ~= '' and redis.call('SISMEMBER', P .. 'rep:' .. kind, ids[kind]) or -1)
end
for _, kind in ipairs({'instrument', 'device', 'ip', 'email_domain'}) do
    table.insert(out, ids[kind] ~= '' and (redis.call('HGET', P .. 'seen:' .. kind, ids[kind]) or 0) or -1)
end
table.insert(out, ids.email_domain ~= '' and (redis.call('HGET', P .. 'dtx', ids.email_domain) or 0) or -1)
"""

# Extra ARGV (after the read's): keep (buckets), amount (major units), log amount, account
# created ('' unknown), transaction id, keys JSON, observed ttl ms, velocity ttl ms.
_WRITE = """
local keep, amount, log_amount = tonumber(ARGV[12]), ARGV[13], tonumber(ARGV[14])
local bucket = tonumber(ARGV[8])
local b = math.floor(at / bucket)
for _, kind in ipairs(KINDS) do
    if ids[kind] ~= '' then
        local key = P .. 'v:' .. kind .. ':' .. ids[kind]
        local latest = redis.call('HGET', key, 'latest')
        latest = latest and tonumber(latest)
        if not (latest and b <= math.floor(latest / bucket) - keep) then
            redis.call('HINCRBY', key, 'c' .. string.format('%d', b), 1)
            redis.call('HINCRBYFLOAT', key, 'a' .. string.format('%d', b), amount)
            if (not latest) or at > latest then
                redis.call('HSET', key, 'latest', ARGV[2])
                if latest and b > math.floor(latest / bucket) then
                    local floor = b - keep
                    for _, field in ipairs(redis.call('HKEYS', key)) do
                        local tag = string.sub(field, 1, 1)
                        if (tag == 'c' or tag == 'a') and tonumber(string.sub(field, 2)) <= floor then
                            redis.call('HDEL', key, field)
                        end
                    end
                end
            end
            redis.call('PEXPIRE', key, ARGV[19])
        end
    end
end
local ukey = P .. 'u:' .. user
local h = redis.call('HMGET', ukey, 'n', 'mean', 'm2')
local n, mean, m2 = tonumber(h[1] or 0) + 1, tonumber(h[2] or 0), tonumber(h[3] or 0)
local delta = log_amount - mean
mean = mean + delta / n
m2 = m2 + delta * (log_amount - mean)
redis.call('HSET', ukey, 'n', n, 'mean', fmt(mean), 'm2', fmt(m2))
if ids.instrument ~= '' then redis.call('SADD', P .. 'ui:' .. user, ids.instrument) end
if ids.device ~= '' then redis.call('SADD', P .. 'ud:' .. user, ids.device) end
for _, kind in ipairs({'instrument', 'device', 'ip'}) do
    if ids[kind] ~= '' then redis.call('SADD', P .. 'a:' .. kind .. ':' .. ids[kind], user) end
end
local function root_of(node, account)
    if redis.call('HSETNX', P .. 'rp', node, node) == 1 then
        if account then redis.call('SADD', P .. 'rm:' .. node, user) end
        return node
    end
    local p = redis.call('HGET', P .. 'rp', node)
    while p ~= node do  -- path halving, as the in-process union-find
        local grand = redis.call('HGET', P .. 'rp', p)
        redis.call('HSET', P .. 'rp', node, grand)
        node = grand
        p = redis.call('HGET', P .. 'rp', node)
    end
    return node
end
local root = root_of('a:' .. user, true)
for _, kind in ipairs({'instrument', 'device'}) do
    if ids[kind] ~= '' then
        local other = root_of('i:' .. ids[kind], false)
        if other ~= root then
            local small, big = root, other
            if redis.call('SCARD', P .. 'rm:' .. other) < redis.call('SCARD', P .. 'rm:' .. root) then
                small, big = other, root
            end
            redis.call('HSET', P .. 'rp', small, big)
            redis.call('SUNIONSTORE', P .. 'rm:' .. big, P .. 'rm:' .. big, P .. 'rm:' .. small)
            redis.call('DEL', P .. 'rm:' .. small)
            root = big
        end
    end
end
if ARGV[15] ~= '' then redis.call('HSETNX', ukey, 'created', ARGV[15]) end
redis.call('HSETNX', ukey, 'created', ARGV[2])
if ids.email_domain ~= '' then redis.call('HINCRBY', P .. 'dtx', ids.email_domain, 1) end
local okey = P .. 'obs:' .. ARGV[16]
redis.call('HSET', okey, 'ts', ARGV[2], 'keys', ARGV[17])
redis.call('PEXPIRE', okey, ARGV[18])
"""

# ARGV: prefix, transaction id, fraud (0/1), known at ms ('' = ts + delay), delay ms.
_LABEL = """
local P = ARGV[1]
local o = redis.call('HMGET', P .. 'obs:' .. ARGV[2], 'ts', 'keys')
if not o[1] then return 0 end
if ARGV[3] == '0' then return 1 end
local when = ARGV[4] ~= '' and tonumber(ARGV[4]) or tonumber(o[1]) + tonumber(ARGV[5])
local seq = redis.call('INCR', P .. 'pseq')
redis.call('ZADD', P .. 'pending', when, seq .. '|' .. o[2])
return 1
"""

_V0 = INDEX["user_count_1h"]
_NEW_INSTRUMENT = INDEX["new_instrument"]
_ACCOUNTS = INDEX["instrument_accounts"]
_RING = INDEX["ring_accounts"]
_REP = INDEX["rep_ip"]
_SEEN = INDEX["instrument_fraud_seen"]


class RedisFeatureState:
    """The fraud feature state (the :class:`~marketpilot.fraud.features.FeatureState`
    contract) kept in Redis. ``client`` is a URL or a ``redis.Redis``."""

    def __init__(
        self,
        client: str | redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        label_delay: timedelta = DEFAULT_LABEL_DELAY,
        observed_ttl: timedelta = timedelta(days=120),
    ) -> None:
        self.redis = redis.Redis.from_url(client) if isinstance(client, str) else client
        self.prefix = prefix
        self.label_delay_ms = int(label_delay.total_seconds() * 1000)
        self.observed_ttl_ms = int(observed_ttl.total_seconds() * 1000)
        self._read = self.redis.register_script(_HEADER + _READ + "\nreturn out\n")
        self._write = self.redis.register_script(_HEADER + _WRITE + "\nreturn 1\n")
        self._both = self.redis.register_script(_HEADER + _READ + _WRITE + "\nreturn out\n")
        self._label = self.redis.register_script(_LABEL)

    # -- reference data -------------------------------------------------------------------

    def add_users(self, rows: Iterable[tuple[str, str | None, datetime | None]]) -> None:
        """Known accounts: (user id, home region, creation time)."""
        pipe = self.redis.pipeline(transaction=False)
        for i, (user, region, created) in enumerate(rows, 1):
            fields: dict[FieldT, EncodableT] = {}
            if region:
                fields["home"] = region
            if created is not None:
                fields["created"] = to_ms(created)
            if fields:
                pipe.hset(f"{self.prefix}u:{user}", mapping=fields)
            if i % 5000 == 0:
                pipe.execute()
        pipe.execute()

    def add_reputation(self, kind: str, values: Iterable[str]) -> int:
        if kind not in REPUTATION_KINDS:
            raise ValueError(f"unknown reputation list {kind!r}; known: {', '.join(REPUTATION_KINDS)}")
        clean = [v for v in values if v]
        return int(self.redis.sadd(f"{self.prefix}rep:{kind}", *clean)) if clean else 0

    # -- the request path -------------------------------------------------------------------

    def vector(self, r: FraudRequest, out: np.ndarray | None = None) -> np.ndarray:
        """Features of `r` from what was observed before it (releases due labels only)."""
        at = to_ms(r.at())
        return self._fill(r, at, self._read(args=self._read_args(r, at)), out)

    def observe(self, r: FraudRequest) -> None:
        """Fold `r` into the state (after it was scored)."""
        at = to_ms(r.at())
        self._write(args=[*self._read_args(r, at), *self._write_args(r)])

    def vector_then_observe(self, r: FraudRequest, out: np.ndarray | None = None) -> np.ndarray:
        """The request path in one round trip: `r`'s features as of before it, then `r` folded in."""
        at = to_ms(r.at())
        reply = self._both(args=[*self._read_args(r, at), *self._write_args(r)])
        return self._fill(r, at, reply, out)

    def label(self, transaction_id: str, fraud: bool, *, known_at: datetime | None = None) -> bool:
        """A confirmed label for an observed attempt; it counts in ``*_fraud_seen`` from
        `known_at` (default: the attempt's time plus the label delay). False if unknown."""
        when = "" if known_at is None else to_ms(known_at)
        return bool(self._label(args=[self.prefix, transaction_id, int(fraud), when, self.label_delay_ms]))

    # -- housekeeping -----------------------------------------------------------------------

    def claim_priming(self) -> bool:
        """True for exactly one caller while the state is empty of history: that replica
        replays recent history into it; the others find it primed (or being primed)."""
        return bool(self.redis.set(f"{self.prefix}primed", "1", nx=True))

    def clear(self) -> int:
        """Delete every key of this state (tests, a rebuild); returns keys deleted."""
        deleted = 0
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += int(self.redis.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(self.redis.delete(*batch))
        return deleted

    # -- internals --------------------------------------------------------------------------

    def _read_args(self, r: FraudRequest, at: int) -> list[str | int]:
        keys = request_keys(r)
        return [self.prefix, at, *(keys.get(kind, "") for kind in KEY_KINDS), _BUCKET_MS, *_SPANS, NEW_ACCOUNT]

    def _write_args(self, r: FraudRequest) -> list[str | int]:
        major = major_amount(r.amount_minor, r.currency)
        created = "" if r.account_created_at is None else to_ms(r.account_created_at)
        return [max(_SPANS), repr(major), repr(math.log1p(max(major, 0.0))), created, r.transaction_id,
                json.dumps(request_keys(r), separators=(",", ":")), self.observed_ttl_ms, _VELOCITY_TTL_MS]

    def _fill(self, r: FraudRequest, at: int, reply: list, out: np.ndarray | None) -> np.ndarray:
        x = np.full(len(FEATURES), np.nan) if out is None else out
        n = int(reply[0] or 0)
        mean = float(reply[1] or 0.0)
        std = math.sqrt(float(reply[2]) / (n - 1)) if n > 1 else 0.0
        home = reply[4].decode() if reply[4] else None
        fill_request_features(x, r, at, n, mean, std, int(reply[3]) if reply[3] else None, home)
        known_instrument, known_device = reply[5], reply[6]
        x[_NEW_INSTRUMENT] = np.nan if known_instrument < 0 else float(n == 0 or known_instrument == 0)
        x[_NEW_INSTRUMENT + 1] = np.nan if known_device < 0 else float(n == 0 or known_device == 0)
        for i in range(len(KEY_KINDS)):
            c1, c2, s2 = reply[7 + 3 * i:10 + 3 * i]
            j = _V0 + 3 * i
            if c1 < 0:
                x[j:j + 3] = np.nan
            else:
                x[j], x[j + 1], x[j + 2] = c1, c2, math.log1p(float(s2))
        k = 7 + 3 * len(KEY_KINDS)
        for i in range(3):
            x[_ACCOUNTS + i] = np.nan if reply[k + i] < 0 else reply[k + i]
        x[_RING], x[_RING + 1] = reply[k + 3], reply[k + 4]
        k += 5
        for i in range(len(REPUTATION_KINDS)):
            x[_REP + i] = np.nan if reply[k + i] < 0 else float(reply[k + i])
        k += len(REPUTATION_KINDS)
        for i in range(3):
            x[_SEEN + i] = np.nan if int(reply[k + i]) < 0 else float(reply[k + i])
        seen_domain, domain_txns = int(reply[k + 3]), int(reply[k + 4])
        x[_SEEN + 3] = np.nan if seen_domain < 0 else seen_domain / (domain_txns + DOMAIN_PRIOR)
        return x
