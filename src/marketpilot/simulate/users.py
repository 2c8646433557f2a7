"""Buyers: taste, price sensitivity, activity, and the identifiers payments are made with.

A buyer's taste is a mixture of 1-3 leaf-category centres plus one or two style words plus
personal noise, normalised - so most buyers have a few clear interests and some drift.
Price sensitivity and activity depend on the segment (bargain hunters compare prices,
enthusiasts browse a lot). Each buyer owns two devices, two payment instruments, a home IP
and an email domain: the identity graph that fraud rings later share or steal from.

A small pool of accounts is reserved for fraudsters (see `fraud.py`). They never browse;
their creation time is set by the fraud process, which is why users.csv is written last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.categories import Catalogue
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import entity_ids
from marketpilot.simulate.output import take
from marketpilot.simulate.randomness import Streams

CHUNK = 100_000
NEW_ACCOUNT_SHARE = 0.03  # legit accounts created during the window
IDENTIFIER_SPACE = 10**12
DEVICE_TYPE_SHARE = (0.45, 0.2, 0.3, 0.05)
SEGMENTS = tuple(vocab.SEGMENTS)


@dataclass
class Users:
    """Per-user arrays, row i = user i (user id `usr_{i:08d}`)."""

    region: np.ndarray  # int8
    segment: np.ndarray  # int8 index into SEGMENTS
    price_sensitivity: np.ndarray  # float32
    activity: np.ndarray  # float32 expected sessions per day
    taste: np.ndarray  # (U, K) float32 unit norm
    created_at: np.ndarray  # int64 Unix seconds
    device: np.ndarray  # (U, 2) int64 device ids
    device_type: np.ndarray  # int8 preferred index into vocab.DEVICE_TYPES
    instrument: np.ndarray  # (U, 2) int64 payment instrument fingerprints
    home_ip: np.ndarray  # int64 packed IPv4
    email_domain: np.ndarray  # int8 index into vocab.EMAIL_DOMAINS
    fraud_pool: np.ndarray  # bool: reserved for fraudsters, never browses

    def __len__(self) -> int:
        return len(self.region)


def random_ips(rng: np.random.Generator, geo: Geography, region: np.ndarray) -> np.ndarray:
    """Packed IPv4 addresses whose first octet belongs to `region`."""
    n = len(region)
    first = geo.ip_octets[region, rng.integers(0, geo.ip_octets.shape[1], n)]
    rest = rng.integers(1, 1 << 24, n)
    return (first.astype(np.int64) << 24) | rest


def fraud_pool_size(config: SimulationConfig) -> int:
    if config.fraud_rate == 0:
        return 0
    return int(min(config.users // 4, max(12, np.ceil(config.users * config.fraud_rate * 2))))


def generate_users(streams: Streams, config: SimulationConfig, catalogue: Catalogue, geo: Geography) -> Users:
    n, k = config.users, config.latent_dim
    rng = streams.rng("users")
    seg_share = np.array([vocab.SEGMENTS[s][0] for s in SEGMENTS])
    segment = rng.choice(len(SEGMENTS), n, p=seg_share / seg_share.sum()).astype(np.int8)
    seg_sens = np.array([vocab.SEGMENTS[s][1] for s in SEGMENTS])
    seg_act = np.array([vocab.SEGMENTS[s][2] for s in SEGMENTS])
    seg_act = seg_act / (seg_share / seg_share.sum() @ seg_act)
    age_days = rng.gamma(2.0, 250.0, n) + 1.0
    created = config.start_epoch - age_days * 86_400
    new = rng.random(n) < NEW_ACCOUNT_SHARE
    created[new] = config.start_epoch + rng.random(int(new.sum())) * config.days * 86_400
    pool = np.zeros(n, dtype=bool)
    pool[rng.choice(n, fraud_pool_size(config), replace=False)] = True
    activity = config.sessions_per_user_per_week / 7.0 * seg_act[segment] * rng.gamma(0.8, 1 / 0.8, n)
    activity[pool] = 0.0
    region = rng.choice(geo.n_regions, n, p=geo.buyer_share).astype(np.int8)
    users = Users(
        region=region,
        segment=segment,
        price_sensitivity=np.maximum(0.0, seg_sens[segment] + rng.normal(0, 0.3, n)).astype(np.float32),
        activity=activity.astype(np.float32),
        taste=np.empty((n, k), dtype=np.float32),
        created_at=created.astype(np.int64),
        device=rng.integers(0, IDENTIFIER_SPACE, (n, 2)),
        device_type=rng.choice(len(vocab.DEVICE_TYPES), n, p=DEVICE_TYPE_SHARE).astype(np.int8),
        instrument=rng.integers(0, IDENTIFIER_SPACE, (n, 2)),
        home_ip=random_ips(rng, geo, region),
        email_domain=rng.integers(0, len(vocab.EMAIL_DOMAINS), n).astype(np.int8),
        fraud_pool=pool,
    )
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        users.taste[lo:hi] = _tastes(streams.rng("user_taste", lo // CHUNK), catalogue, hi - lo)
    return users


def _tastes(rng: np.random.Generator, catalogue: Catalogue, n: int) -> np.ndarray:
    k = catalogue.leaf_centres.shape[1]
    raw = rng.normal(0.0, 0.4, (n, k))
    n_interests = 1 + rng.binomial(2, 0.4, n)
    first = rng.choice(catalogue.n_leaves, n, p=catalogue.leaf_share)
    # leaves are stored grouped by mid-level category: one interval of leaf ids per mid
    mids = np.arange(len(catalogue.mids))
    mid_lo = np.searchsorted(catalogue.leaf_mid, mids, side="left")
    mid_n = np.searchsorted(catalogue.leaf_mid, mids, side="right") - mid_lo
    raw += catalogue.leaf_centres[first]
    for j in (1, 2):
        # a further interest is a sibling of the first half of the time, anything otherwise
        m = catalogue.leaf_mid[first]
        sibling = mid_lo[m] + np.floor(rng.random(n) * mid_n[m]).astype(np.int64)
        anywhere = rng.choice(catalogue.n_leaves, n, p=catalogue.leaf_share)
        leaf = np.where(rng.random(n) < 0.5, sibling, anywhere)
        weight = np.where(j < n_interests, 1.0 / (1 + j), 0.0)[:, None]
        raw += weight * catalogue.leaf_centres[leaf]
    styles = rng.integers(0, len(vocab.STYLES), (n, 2))
    raw += 0.8 * catalogue.style_vectors[styles[:, 0]]
    raw += np.where(rng.random(n) < 0.5, 0.5, 0.0)[:, None] * catalogue.style_vectors[styles[:, 1]]
    return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


def user_rows(config: SimulationConfig, users: Users, geo: Geography, lo: int, hi: int) -> dict[str, object]:
    ids = entity_ids("user", np.arange(lo, hi))
    return {
        "user_id": ids,
        "region": take(geo.codes, users.region[lo:hi]),
        "segment": take(SEGMENTS, users.segment[lo:hi]),
        # example.com is reserved for documentation (RFC 2606): nothing sent there reaches anyone
        "email": pc.binary_join_element_wise(ids, "@example.com", ""),
        "created_at": users.created_at[lo:hi],
    }
