"""Sellers: where they ship from, how good and how fast they are, and how big they are.

Seller size follows a heavy-tailed (log-normal) weight, so a few shops hold many listings
and most hold a handful - the shape that makes seller-level features and cold-start by
seller history meaningful. Some sellers carry `external_history_ref`: an id of their track
record on another marketplace, the signal an onboarding model can use for a new shop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import entity_ids
from marketpilot.simulate.output import NULL_TIME, take

EXTERNAL_REF_SPACE = 10**8


@dataclass(frozen=True)
class Sellers:
    region: np.ndarray  # (N,) region index (origin of shipments)
    created_at: np.ndarray  # (N,) Unix seconds
    quality: np.ndarray  # (N,) added to the quality of the seller's items
    handling_days: np.ndarray  # (N,) mean days from order to hand-over to the carrier
    weight: np.ndarray  # (N,) relative number of listings
    external_ref: np.ndarray  # (N,) id on the other marketplace, -1 if none
    name_first: np.ndarray
    name_second: np.ndarray

    def __len__(self) -> int:
        return len(self.region)


def generate_sellers(rng: np.random.Generator, n: int, geo: Geography, start_epoch: int,
                     external_share: float) -> Sellers:
    age_days = rng.gamma(2.0, 300.0, n) + 30.0
    has_ref = rng.random(n) < external_share
    refs = np.full(n, -1, dtype=np.int64)
    if has_ref.any():
        refs[has_ref] = rng.choice(EXTERNAL_REF_SPACE, int(has_ref.sum()), replace=False)
    return Sellers(
        region=rng.choice(geo.n_regions, n, p=geo.buyer_share),
        created_at=(start_epoch - age_days * 86_400).astype(np.int64),
        quality=rng.normal(0.0, 0.3, n),
        handling_days=rng.lognormal(np.log(1.0), 0.5, n),
        weight=rng.lognormal(0.0, 1.2, n),
        external_ref=refs,
        name_first=rng.integers(0, len(vocab.SELLER_FIRST), n),
        name_second=rng.integers(0, len(vocab.SELLER_SECOND), n),
    )


def seller_rows(sellers: Sellers, geo: Geography, lo: int, hi: int) -> dict[str, pa.Array | np.ndarray]:
    """Columns of sellers.csv for sellers [lo, hi)."""
    sl = slice(lo, hi)
    ref = sellers.external_ref[sl]
    ref_text = pc.binary_join_element_wise(
        "extmp:", pa.array(np.where(ref < 0, 0, ref)).cast(pa.string()), "")
    ref_text = pc.if_else(pa.array(ref < 0), pa.scalar(None, pa.string()), ref_text)
    return {
        "seller_id": entity_ids("seller", np.arange(lo, hi)),
        "name": pc.binary_join_element_wise(
            take(vocab.SELLER_FIRST, sellers.name_first[sl]),
            take(vocab.SELLER_SECOND, sellers.name_second[sl]), " "),
        "country": take(geo.codes, sellers.region[sl]),
        "created_at": np.where(sellers.created_at[sl] > 0, sellers.created_at[sl], NULL_TIME),
        "external_history_ref": ref_text,
    }
