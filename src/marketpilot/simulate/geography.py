"""Regions and carrier lanes: where buyers and sellers are, and how reliably parcels travel.

A lane is (carrier, origin region, destination region). Its true on-time probability is a
carrier baseline minus a distance penalty minus a cross-border penalty plus a lane-specific
random effect - the random effect is what a carrier-selection model has to learn from
`shipments.csv`, because it cannot be derived from the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketpilot.simulate import vocabulary as vocab

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class Geography:
    codes: tuple[str, ...]
    names: tuple[str, ...]
    lat: np.ndarray
    lon: np.ndarray
    buyer_share: np.ndarray  # (R,) share of buyers (and of sellers)
    ip_octets: np.ndarray  # (R, 4) first IPv4 octets of the region's ISPs
    carriers: tuple[str, ...]
    carrier_share: np.ndarray  # (R, C) share of each carrier for parcels leaving a region
    on_time: np.ndarray  # (C, R, R) true P(delivered by promised_at)
    promised_days: np.ndarray  # (C, R, R) days promised from shipping to delivery
    mean_delay_days: np.ndarray  # (C, R, R) mean lateness of a late parcel

    @property
    def n_regions(self) -> int:
        return len(self.codes)

    def distance_km(self) -> np.ndarray:
        """(R, R) great-circle distance between region centres."""
        lat, lon = np.radians(self.lat), np.radians(self.lon)
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        a = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
        return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def build_geography(rng: np.random.Generator) -> Geography:
    codes = tuple(r[0] for r in vocab.REGIONS)
    lat = np.array([r[2] for r in vocab.REGIONS])
    lon = np.array([r[3] for r in vocab.REGIONS])
    share = np.array([r[4] for r in vocab.REGIONS])
    geo = Geography(
        codes=codes, names=tuple(r[1] for r in vocab.REGIONS), lat=lat, lon=lon,
        buyer_share=share / share.sum(), ip_octets=np.array([r[5] for r in vocab.REGIONS]),
        carriers=(), carrier_share=np.zeros((0, 0)), on_time=np.zeros(0), promised_days=np.zeros(0),
        mean_delay_days=np.zeros(0),
    )
    carriers = tuple(vocab.CARRIERS)
    base = np.array([vocab.CARRIERS[c][0] for c in carriers])
    extra_days = np.array([vocab.CARRIERS[c][1] for c in carriers])
    prior = np.array([vocab.CARRIERS[c][2] for c in carriers])
    n_r, n_c = len(codes), len(carriers)
    dist = geo.distance_km()
    cross_border = 1.0 - np.eye(n_r)
    logit = (base[:, None, None] - 0.35 * dist[None] / 500.0 - 0.4 * cross_border[None]
             + rng.normal(0.0, 0.6, (n_c, n_r, n_r)))
    on_time = 1.0 / (1.0 + np.exp(-logit))
    promised = np.maximum(1, np.ceil(1 + dist / 700.0)[None] + extra_days[:, None, None]).astype(np.int64)
    delay = 0.5 + dist[None] / 1500.0 + rng.gamma(2.0, 0.25, (n_c, n_r, n_r))
    carrier_share = rng.dirichlet(prior * 30.0, n_r)
    return Geography(
        codes=geo.codes, names=geo.names, lat=lat, lon=lon, buyer_share=geo.buyer_share,
        ip_octets=geo.ip_octets, carriers=carriers, carrier_share=carrier_share, on_time=on_time,
        promised_days=promised, mean_delay_days=delay,
    )
