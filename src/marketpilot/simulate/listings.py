"""Listings: the catalogue's items, their hidden factors and quality, and cold-start items.

An item's latent factor vector is the normalised sum of its pieces' vectors (leaf centre +
style words + brand + colour) plus item noise, so items that share words share taste. Its
quality comes from brand tier, condition and seller plus noise, and its price from the
leaf's reference price, the brand premium, condition and quality.

Cold-start listings are created in the last `cold_start_days` of the window and are never
shown to buyers. They are only given to sellers with history: never a seller's first listing
(which is always active and shown), so every cold-start seller has at least one listing
that collected interactions, sales or orders - or at least had the chance to.

The generator works in two passes: a global pass draws the small per-listing arrays the rest
of the simulation needs (kept in memory as `Listings`), then `listing_chunks` renders text
and writes rows chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.categories import BRANDS_PER_TOP, Catalogue
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.identifiers import entity_ids
from marketpilot.simulate.output import take
from marketpilot.simulate.prices import PricePath, charm_price
from marketpilot.simulate.randomness import Streams
from marketpilot.simulate.sellers import Sellers
from marketpilot.simulate.text import CONDITIONS, ItemWords, nouns, render

CHUNK = 100_000
STATUSES = ("active", "draft", "sold_out", "delisted")
STATUS_SHARE = (0.88, 0.03, 0.05, 0.04)
SELLER_FOCUS = 0.8  # share of a seller's listings in its own top-level category
SECOND_STYLE_P = 0.35


@dataclass
class Listings:
    """Per-listing arrays, row i = listing i (listing id `lst_{i:08d}`)."""

    seller: np.ndarray  # int32
    leaf: np.ndarray  # int16
    status: np.ndarray  # int8 index into STATUSES
    cold: np.ndarray  # bool
    created_at: np.ndarray  # int64 Unix seconds
    quantity: np.ndarray  # int32 units in stock
    quality: np.ndarray  # float32
    base_price_minor: np.ndarray  # int64, before repricing and promotions
    policy_score: np.ndarray  # float32, what the logging policy believes about the item
    factors: np.ndarray  # (N, K) float32, unit norm

    def __len__(self) -> int:
        return len(self.seller)

    @property
    def shown(self) -> np.ndarray:
        """Listings the logging policy may show: live during the window, not cold-start."""
        return ~self.cold & (self.status != STATUSES.index("draft"))


def _assign(rng: np.random.Generator, config: SimulationConfig, catalogue: Catalogue,
            sellers: Sellers) -> tuple[np.ndarray, np.ndarray]:
    """Seller and leaf of every listing: every seller has one, sellers focus on one top level."""
    n, n_sellers = config.listings, len(sellers)
    seller = np.empty(n, dtype=np.int32)
    seller[:n_sellers] = np.arange(n_sellers)
    weight = sellers.weight / sellers.weight.sum()
    seller[n_sellers:] = rng.choice(n_sellers, n - n_sellers, p=weight)

    cdf = np.cumsum(catalogue.leaf_share)
    cdf[-1] = 1.0
    # leaves are stored grouped by top level, so each top level is one interval of the cdf
    before = np.r_[0.0, cdf]
    tops = np.arange(len(catalogue.tops))
    top_lo = before[np.searchsorted(catalogue.leaf_top, tops, side="left")]
    top_hi = before[np.searchsorted(catalogue.leaf_top, tops, side="right")]
    top_share = top_hi - top_lo
    seller_top = rng.choice(len(catalogue.tops), n_sellers, p=top_share / top_share.sum())
    u = rng.random(n)
    focused = rng.random(n) < SELLER_FOCUS
    t = seller_top[seller]
    u = np.where(focused, top_lo[t] + u * (top_hi[t] - top_lo[t]), u)
    leaf = np.minimum(np.searchsorted(cdf, u, side="right"), catalogue.n_leaves - 1).astype(np.int16)
    return seller, leaf


def _cold_start(rng: np.random.Generator, config: SimulationConfig, n_sellers: int) -> np.ndarray:
    cold = np.zeros(config.listings, dtype=bool)
    candidates = np.arange(n_sellers, config.listings)  # never a seller's first listing
    n_cold = min(len(candidates), int(round(config.cold_start_share * config.listings)))
    if n_cold:
        cold[rng.choice(candidates, n_cold, replace=False)] = True
    return cold


def generate_listings(streams: Streams, config: SimulationConfig, catalogue: Catalogue,
                      sellers: Sellers) -> Listings:
    """Draw everything about listings except text; text is rendered per chunk when writing."""
    rng = streams.rng("listings")
    n = config.listings
    seller, leaf = _assign(rng, config, catalogue, sellers)
    cold = _cold_start(rng, config, len(sellers))

    status = rng.choice(len(STATUSES), n, p=STATUS_SHARE).astype(np.int8)
    status[cold] = 0
    status[: len(sellers)] = 0  # a seller's first listing is live: its history
    quantity = rng.geometric(0.15, n).astype(np.int32)
    quantity[status == STATUSES.index("sold_out")] = 0

    cold_window = min(config.cold_start_days, config.days) * 86_400
    age = rng.gamma(1.5, 80.0, n) * 86_400 + 3_600
    created = np.where(cold, config.end_epoch - rng.random(n) * cold_window, config.start_epoch - age)
    created = np.maximum(created, sellers.created_at[seller] + 3_600).astype(np.int64)
    created = np.where(cold, np.maximum(created, config.end_epoch - cold_window), created)

    listings = Listings(
        seller=seller, leaf=leaf, status=status, cold=cold, created_at=created, quantity=quantity,
        quality=np.empty(n, np.float32), base_price_minor=np.empty(n, np.int64),
        policy_score=np.empty(n, np.float32), factors=np.empty((n, config.latent_dim), np.float32),
    )
    for lo in range(0, n, CHUNK):
        _fill_chunk(streams.rng("listing_chunk", lo // CHUNK), config, catalogue, sellers, listings, lo,
                    min(n, lo + CHUNK))
    return listings


def draw_words(rng: np.random.Generator, catalogue: Catalogue, leaf: np.ndarray) -> ItemWords:
    n = len(leaf)
    _, noun_offset, noun_count = nouns(catalogue)
    top = catalogue.leaf_top[leaf]
    brand_rank = rng.zipf(1.6, n) - 1
    brand = top * BRANDS_PER_TOP + np.minimum(brand_rank, BRANDS_PER_TOP - 1)  # brands grouped per top
    style_cdf = np.cumsum(catalogue.top_style_share, axis=1)
    style1 = np.minimum((style_cdf[top] < rng.random(n)[:, None]).sum(axis=1), len(vocab.STYLES) - 1)
    style2 = np.minimum((style_cdf[top] < rng.random(n)[:, None]).sum(axis=1), len(vocab.STYLES) - 1)
    style2 = np.where((rng.random(n) < SECOND_STYLE_P) & (style2 != style1), style2, -1)
    colour_p = np.array([3.0, 2.5, 2.0] + [1.0] * (len(vocab.COLOURS) - 3))
    colour = rng.choice(len(vocab.COLOURS), n, p=colour_p / colour_p.sum())
    kind = catalogue.leaf_size_kind[leaf]
    apparel = rng.choice(len(vocab.APPAREL_SIZES), n, p=[0.08, 0.2, 0.28, 0.24, 0.14, 0.06])
    shoes = len(vocab.APPAREL_SIZES) + np.clip(np.round(rng.normal(5.5, 2.2, n)), 0,
                                               len(vocab.SHOE_SIZES) - 1).astype(np.int64)
    size = np.where(kind == 1, apparel, np.where(kind == 2, shoes, -1))
    cond_p = np.array([vocab.CONDITIONS[c][0] for c in CONDITIONS])
    condition = rng.choice(len(CONDITIONS), n, p=cond_p / cond_p.sum())
    noun = noun_offset[leaf] + np.floor(rng.random(n) * noun_count[leaf]).astype(np.int64)
    return ItemWords(leaf=np.asarray(leaf, dtype=np.int64), noun=noun, brand=brand, style1=style1,
                     style2=style2, colour=colour, size=size, condition=condition)


def item_factors(rng: np.random.Generator, catalogue: Catalogue, words: ItemWords) -> np.ndarray:
    """Unit-norm latent factors built from the item's words plus item-specific noise."""
    k = catalogue.leaf_centres.shape[1]
    raw = (catalogue.leaf_centres[words.leaf] + catalogue.style_vectors[words.style1]
           + catalogue.brand_vectors[words.brand] + catalogue.colour_vectors[words.colour]
           + rng.normal(0.0, 0.5, (len(words.leaf), k)))
    has2 = words.style2 >= 0
    raw[has2] += 0.6 * catalogue.style_vectors[words.style2[has2]]
    return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


def _fill_chunk(rng: np.random.Generator, config: SimulationConfig, catalogue: Catalogue, sellers: Sellers,
                listings: Listings, lo: int, hi: int) -> None:
    leaf = listings.leaf[lo:hi].astype(np.int64)
    words = draw_words(rng, catalogue, leaf)
    listings.factors[lo:hi] = item_factors(rng, catalogue, words)
    cond_quality = np.array([vocab.CONDITIONS[c][1] for c in CONDITIONS])[words.condition]
    cond_price = np.array([vocab.CONDITIONS[c][2] for c in CONDITIONS])[words.condition]
    quality = (catalogue.brand_quality[words.brand] + cond_quality + sellers.quality[listings.seller[lo:hi]]
               + rng.normal(0.0, 0.4, hi - lo))
    listings.quality[lo:hi] = quality
    log_price = (np.log(catalogue.ref_price_major[leaf]) + catalogue.brand_log_premium[words.brand]
                 + 0.15 * quality + rng.normal(0.0, 0.25, hi - lo))
    major = np.exp(log_price) * cond_price
    listings.base_price_minor[lo:hi] = charm_price(major * config.minor_per_major, config.minor_per_major)
    listings.policy_score[lo:hi] = quality + rng.normal(0.0, 1.0, hi - lo)
    # Words are re-drawn identically when writing (same stream), so they need not be kept.


def listing_chunks(streams: Streams, config: SimulationConfig, catalogue: Catalogue,
                   listings: Listings, prices: PricePath) -> Iterator[tuple[int, int, dict[str, object],
                                                                             ItemWords]]:
    """Rows of listings.csv chunk by chunk, plus the words each item was made of."""
    n = len(listings)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        rng = streams.rng("listing_chunk", lo // CHUNK)
        words = draw_words(rng, catalogue, listings.leaf[lo:hi].astype(np.int64))
        title, description, attributes = render(catalogue, words)
        index = np.arange(lo, hi)
        rows: dict[str, object] = {
            "listing_id": entity_ids("listing", index),
            "seller_id": entity_ids("seller", listings.seller[lo:hi]),
            "title": title,
            "description": description,
            "category_path": take(catalogue.paths, listings.leaf[lo:hi]),
            "attributes": attributes,
            "price_minor": prices.regular(index, config.days - 1),
            "currency": pa.repeat(config.currency, hi - lo),
            "status": take(STATUSES, listings.status[lo:hi]),
            "quantity": listings.quantity[lo:hi].astype(np.int64),
            "created_at": listings.created_at[lo:hi],
        }
        yield lo, hi, rows, words
