"""The category tree, brands and style words, with the hidden parameters the world runs on.

Every leaf category gets a latent centre (taste space), a reference price, a true price
elasticity and a seasonal profile (yearly peak + weekly shape). Brands and style words get
latent offsets too. Items are built from these pieces (see `listings.py`), so the words in a
title - noun (leaf), brand, style, colour - are exactly what positions an item in taste
space: a text model that learns words -> factors can place a brand-new listing.

Centres are nested (top -> mid -> leaf, each a perturbation of its parent), so sibling
categories are similar and a buyer who likes women's shoes tends to like women's bags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketpilot.simulate import vocabulary as vocab

SIZE_KINDS: tuple[str, ...] = ("none", "apparel", "shoes")
BRANDS_PER_TOP = 10
DAYS_PER_YEAR = 365.2425


@dataclass(frozen=True)
class Catalogue:
    """Categories, brands and style words of one simulated world (all arrays indexed by id)."""

    tops: tuple[str, ...]
    mids: tuple[str, ...]  # "fashion/women"
    paths: tuple[str, ...]  # leaf paths "fashion/women/shoes"
    leaf_top: np.ndarray  # (L,) index into tops
    leaf_mid: np.ndarray  # (L,) index into mids
    leaf_nouns: tuple[tuple[str, ...], ...]
    leaf_size_kind: np.ndarray  # (L,) index into SIZE_KINDS
    leaf_share: np.ndarray  # (L,) share of listings
    leaf_centres: np.ndarray  # (L, K)
    ref_price_major: np.ndarray  # (L,) typical new-item price
    elasticity: np.ndarray  # (L,) true own-price elasticity, < 0
    season_peak_doy: np.ndarray  # (L,) day of year of the yearly demand peak
    season_amplitude: np.ndarray  # (L,) log-amplitude of the yearly cycle
    weekly: np.ndarray  # (L, 7) log-multiplier per weekday, Monday first, mean 0
    style_vectors: np.ndarray  # (S, K) one per vocab.STYLES
    top_style_share: np.ndarray  # (T, S) how often each style word is used within a top level
    colour_vectors: np.ndarray  # (C, K) one per vocab.COLOURS
    brands: tuple[str, ...]
    brand_top: np.ndarray  # (B,) top-level the brand sells in
    brand_tier: np.ndarray  # (B,) index into vocab.BRAND_TIERS
    brand_quality: np.ndarray  # (B,)
    brand_log_premium: np.ndarray  # (B,)
    brand_vectors: np.ndarray  # (B, K)

    @property
    def n_leaves(self) -> int:
        return len(self.paths)

    def log_demand_shift(self, leaf: np.ndarray, epoch_day: np.ndarray) -> np.ndarray:
        """log of the seasonal multiplier (yearly x weekly) of `leaf` on Unix day `epoch_day`."""
        leaf = np.asarray(leaf)
        epoch_day = np.asarray(epoch_day)
        yearly = self.season_amplitude[leaf] * np.cos(
            2 * np.pi * (epoch_day - self.season_peak_doy[leaf]) / DAYS_PER_YEAR
        )
        weekday = (epoch_day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        return yearly + self.weekly[leaf, weekday]


def build_catalogue(rng: np.random.Generator, latent_dim: int) -> Catalogue:
    """Draw the hidden parameters of every category, brand and style word."""
    k = latent_dim
    tops = tuple(vocab.CATEGORY_TREE)
    mids: list[str] = []
    paths: list[str] = []
    leaf_top: list[int] = []
    leaf_mid: list[int] = []
    nouns: list[tuple[str, ...]] = []
    size_kind: list[int] = []
    for t, top in enumerate(tops):
        for mid, leaves in vocab.CATEGORY_TREE[top].items():
            mids.append(f"{top}/{mid}")
            for leaf, (kind, leaf_nouns) in leaves.items():
                paths.append(f"{top}/{mid}/{leaf}")
                leaf_top.append(t)
                leaf_mid.append(len(mids) - 1)
                nouns.append(leaf_nouns)
                size_kind.append(SIZE_KINDS.index(kind))
    top_idx = np.array(leaf_top)
    mid_idx = np.array(leaf_mid)
    n_leaves = len(paths)

    top_c = rng.normal(0.0, 1.0, (len(tops), k))
    mid_top = np.array([tops.index(m.split("/")[0]) for m in mids])
    mid_c = top_c[mid_top] + rng.normal(0.0, 0.7, (len(mids), k))
    leaf_c = mid_c[mid_idx] + rng.normal(0.0, 0.5, (n_leaves, k))

    share = rng.lognormal(0.0, 0.8, n_leaves)
    share /= share.sum()

    top_price = np.array([vocab.TOP_LEVEL_PRICE[t] for t in tops])
    ref_price = top_price[top_idx] * rng.lognormal(0.0, 0.5, n_leaves)
    top_elasticity = np.array([vocab.TOP_LEVEL_ELASTICITY[t] for t in tops])
    elasticity = np.minimum(top_elasticity[top_idx] + rng.normal(0.0, 0.3, n_leaves), -0.2)
    peak = np.array([vocab.TOP_LEVEL_SEASON[t][0] for t in tops])[top_idx] + rng.normal(0, 12, n_leaves)
    amplitude = np.array([vocab.TOP_LEVEL_SEASON[t][1] for t in tops])[top_idx] * rng.uniform(
        0.7, 1.3, n_leaves)
    weekly = np.array([vocab.TOP_LEVEL_WEEKLY[t] for t in tops])[top_idx] + rng.normal(0, 0.02, (n_leaves, 7))
    weekly -= weekly.mean(axis=1, keepdims=True)

    style_vectors = rng.normal(0.0, 0.9, (len(vocab.STYLES), k))
    colour_vectors = rng.normal(0.0, 0.35, (len(vocab.COLOURS), k))
    top_style_share = rng.dirichlet(np.full(len(vocab.STYLES), 0.5), len(tops))

    names = [p + s for p in vocab.BRAND_PREFIXES for s in vocab.BRAND_SUFFIXES]
    n_brands = BRANDS_PER_TOP * len(tops)
    brands = tuple(names[i] for i in rng.choice(len(names), n_brands, replace=False))
    tiers = tuple(vocab.BRAND_TIERS)
    tier_share = np.array([vocab.BRAND_TIERS[t][0] for t in tiers])
    brand_tier = rng.choice(len(tiers), n_brands, p=tier_share / tier_share.sum())
    brand_quality = np.array([vocab.BRAND_TIERS[tiers[t]][1] for t in brand_tier]) + rng.normal(0, 0.2, n_brands)
    brand_premium = np.array([vocab.BRAND_TIERS[tiers[t]][2] for t in brand_tier]) + rng.normal(0, 0.1, n_brands)

    return Catalogue(
        tops=tops, mids=tuple(mids), paths=tuple(paths), leaf_top=top_idx, leaf_mid=mid_idx,
        leaf_nouns=tuple(nouns), leaf_size_kind=np.array(size_kind), leaf_share=share,
        leaf_centres=leaf_c, ref_price_major=ref_price, elasticity=elasticity,
        season_peak_doy=peak, season_amplitude=amplitude, weekly=weekly,
        style_vectors=style_vectors, top_style_share=top_style_share, colour_vectors=colour_vectors, brands=brands,
        brand_top=np.repeat(np.arange(len(tops)), BRANDS_PER_TOP), brand_tier=brand_tier,
        brand_quality=brand_quality, brand_log_premium=brand_premium,
        brand_vectors=rng.normal(0.0, 0.5, (n_brands, k)),
    )
