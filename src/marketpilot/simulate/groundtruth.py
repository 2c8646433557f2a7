"""# Ground truth of a simulated marketplace

Written by `marketpilot simulate` next to the import files. Everything the generator knew and
the import files do not say. Row `i` of every per-entity array is the entity numbered `i`
(`lst_00000042` is row 42 of `item_factors.npy` and of `listings.parquet`). Timestamps in
Parquet files are UTC; `day` columns count days from the window start (`manifest.json`).

| file | content |
|---|---|
| `model.json` | every constant of the generating process: relevance and click model, logging policy, prices, sales, fraud, shipping |
| `regions.csv` | region code, name, centre, share of buyers, IPv4 first octets of its ISPs |
| `categories.csv` | per leaf category: path, reference price, true price `elasticity`, yearly season (`season_peak_doy`, `season_amplitude`) and weekday log-multipliers `weekly_mon..weekly_sun` |
| `category_centres.npy` | (leaves, K) latent centre of each leaf category |
| `brands.csv`, `brand_vectors.npy`, `style_vectors.npy`, `colour_vectors.npy` | the words items are made of, with their latent vectors (row order as in model.json `vocabulary`) |
| `item_factors.npy` | (listings, K) float32 unit-norm item factors |
| `user_taste.npy` | (users, K) float32 unit-norm user taste |
| `listings.parquet` | per listing: words (leaf, brand, styles, colour, size, condition), `quality`, `base_price_minor`, repricing (`repriced`, `repricing_day`, `repricing_factor`), `policy_score`, `cold_start`, `shown` (eligible for the logging policy) |
| `users.parquet` | per user: region, segment, `price_sensitivity`, `sessions_per_day`, `fraud_account`, devices, instruments, home IP, email domain |
| `sellers.parquet` | per seller: region, quality, handling days, listings, cold-start listings, external history |
| `sessions.parquet` | every browsing session: user, device type and id, start, number of requests |
| `impressions.parquet` | every shown (request, position, listing): browsed category (`group`), logging `propensity` = P(listing at this position given the category), `price_minor` paid that day, true `utility`, `click_probability`, `clicked` |
| `sales_panel.parquet` | listings in sales.csv with their base demand and elasticity |
| `sales_expected.parquet` | the Poisson mean of every sales.csv row |
| `fraud_transactions.csv` | every fraudulent transaction: pattern (`ring`, `account_takeover`, `card_testing`), incident and ring |
| `fraud_rings.json` | each ring: members, shared devices, instruments, IPs, email domain, regions, burst window, transactions, orders |
| `lanes.csv` | per (carrier, origin, destination): true `on_time_probability`, `promised_days`, `mean_delay_days`, carrier share at origin |
| `machines.csv`, `sensors.csv`, `failures.csv` | warehouse machines, their sensor stream (readings every `sensor_interval_minutes`; not an import file), and every failure whose degradation starts inside the window - including some that happen just after it |

## The models behind the data
* Relevance: `utility = kappa * taste_u . factors_i + quality_weight * quality_i
  - price_sensitivity_u * log(price / reference_price(leaf))`; clicks = examination(position) *
  sigmoid(click_bias + utility); see `marketpilot.simulate.behaviour`.
* Item factors are the normalised sum of the vectors of the item's words (leaf centre, brand,
  style words, colour) plus noise, so titles predict factors (content cold start).
* Logging policy: per request a category chosen by the buyer's intent; 4 listings uniform
  from the category's popular 10 % by `policy_score`, 2 uniform from the rest, shuffled.
* Demand: `sales.csv` units ~ Poisson(base * region share * season * (price/base price)^elasticity).
  Promotions raise purchase conversion by `(price/regular)^elasticity` in the order process too.
* Cold start: `cold_start` listings were created in the last `cold_start_days` days and never
  shown; their sellers have other, shown listings and some have `external_history_ref`.
* Fraud: `label` in transactions.csv is 1 exactly for the rows of `fraud_transactions.csv`.
* Shipping: a parcel arrives by `promised_at` with exactly its lane's `on_time_probability`.
* Sensors: degradation of 12-72 h before each failure; see `marketpilot.simulate.sensors`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from marketpilot.simulate import behaviour, policy, prices, sales, shipping
from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.categories import SIZE_KINDS, Catalogue
from marketpilot.simulate.commerce import EMAIL_DOMAINS, PATTERNS
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.fraud import PATTERN_SHARE, FraudProcess
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import entity_ids, ip_strings
from marketpilot.simulate.listings import STATUSES, Listings
from marketpilot.simulate.output import take, write_table
from marketpilot.simulate.sellers import Sellers
from marketpilot.simulate.text import CONDITIONS, SIZES, ItemWords
from marketpilot.simulate.users import SEGMENTS, Users

README = __doc__ or ""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def utc(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64)).cast(pa.timestamp("s", tz="UTC"))


def write_model(directory: Path, config: SimulationConfig, catalogue: Catalogue) -> None:
    model: dict[str, Any] = {
        "latent_dim": config.latent_dim,
        "behaviour": behaviour.parameters(),
        "logging_policy": policy.parameters(),
        "prices": {"change_probability": prices.CHANGE_PROBABILITY, "change_log_range": prices.CHANGE_LOG_RANGE,
                   "promo_probability": prices.PROMO_PROBABILITY, "promo_block_days": prices.PROMO_BLOCK_DAYS,
                   "promo_discount": list(prices.PROMO_DISCOUNT)},
        "sales": {"base_demand_median": sales.BASE_DEMAND_MEDIAN, "base_demand_spread": sales.BASE_DEMAND_SPREAD,
                  "quality_effect": sales.QUALITY_EFFECT},
        "fraud": {"target_rate": config.fraud_rate, "pattern_share": PATTERN_SHARE},
        "shipping": {"lost_rate": shipping.LOST_RATE, "return_rate": shipping.RETURN_RATE,
                     "promise_hour_utc": shipping.PROMISE_HOUR},
        "vocabulary": {"styles": list(vocab.STYLES), "colours": list(vocab.COLOURS), "brands": list(catalogue.brands),
                       "conditions": list(CONDITIONS), "sizes": list(SIZES), "segments": list(SEGMENTS),
                       "email_domains": list(EMAIL_DOMAINS)},
    }
    (directory / "model.json").write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")


def write_world(directory: Path, config: SimulationConfig, catalogue: Catalogue, geo: Geography) -> None:
    write_model(directory, config, catalogue)
    (directory / "README.md").write_text(README)
    write_table(directory / "regions.csv", {
        "region": list(geo.codes), "name": list(geo.names), "latitude": geo.lat, "longitude": geo.lon,
        "buyer_share": geo.buyer_share, "ip_first_octets": [" ".join(map(str, o)) for o in geo.ip_octets],
    })
    parts = [p.split("/") for p in catalogue.paths]
    table: dict[str, Any] = {
        "leaf_id": np.arange(catalogue.n_leaves), "category_path": list(catalogue.paths),
        "top": [p[0] for p in parts], "mid": [p[1] for p in parts], "leaf": [p[2] for p in parts],
        "mid_id": catalogue.leaf_mid, "size_kind": [SIZE_KINDS[k] for k in catalogue.leaf_size_kind],
        "share": catalogue.leaf_share,
        "reference_price_minor": np.round(catalogue.ref_price_major * config.minor_per_major).astype(np.int64),
        "elasticity": catalogue.elasticity, "season_peak_doy": catalogue.season_peak_doy,
        "season_amplitude": catalogue.season_amplitude,
    }
    for d, name in enumerate(WEEKDAYS):
        table[f"weekly_{name}"] = catalogue.weekly[:, d]
    write_table(directory / "categories.csv", table)
    np.save(directory / "category_centres.npy", catalogue.leaf_centres.astype(np.float32))
    tiers = tuple(vocab.BRAND_TIERS)
    write_table(directory / "brands.csv", {
        "brand_id": np.arange(len(catalogue.brands)), "brand": list(catalogue.brands),
        "top": [catalogue.tops[t] for t in catalogue.brand_top], "tier": [tiers[t] for t in catalogue.brand_tier],
        "quality": catalogue.brand_quality, "log_price_premium": catalogue.brand_log_premium,
    })
    np.save(directory / "brand_vectors.npy", catalogue.brand_vectors.astype(np.float32))
    np.save(directory / "style_vectors.npy", catalogue.style_vectors.astype(np.float32))
    np.save(directory / "colour_vectors.npy", catalogue.colour_vectors.astype(np.float32))
    n_c, n_r = len(geo.carriers), geo.n_regions
    grid = np.meshgrid(np.arange(n_c), np.arange(n_r), np.arange(n_r), indexing="ij")
    car, org, dst = (axis.ravel() for axis in grid)
    write_table(directory / "lanes.csv", {
        "carrier": take(geo.carriers, car), "origin_region": take(geo.codes, org), "destination_region": take(geo.codes, dst),
        "on_time_probability": geo.on_time[car, org, dst], "promised_days": geo.promised_days[car, org, dst],
        "mean_delay_days": geo.mean_delay_days[car, org, dst], "carrier_share_at_origin": geo.carrier_share[org, car],
    })


def listing_truth(listings: Listings, words: ItemWords, lo: int, hi: int, catalogue: Catalogue,
                  price_path: prices.PricePath, minor_per_major: int) -> dict[str, Any]:
    index = np.arange(lo, hi)
    repriced, day, factor = price_path.repricing(index)
    leaf = listings.leaf[lo:hi].astype(np.int64)
    return {
        "listing_id": entity_ids("listing", index), "seller_id": entity_ids("seller", listings.seller[lo:hi]),
        "leaf_id": leaf, "brand_id": words.brand, "style": words.style1, "style2": words.style2,
        "colour": words.colour, "size": words.size, "condition": take(CONDITIONS, words.condition),
        "quality": listings.quality[lo:hi], "base_price_minor": listings.base_price_minor[lo:hi],
        "reference_price_minor": np.round(catalogue.ref_price_major[leaf] * minor_per_major).astype(np.int64),
        "repriced": repriced, "repricing_day": day, "repricing_factor": factor,
        "policy_score": listings.policy_score[lo:hi], "cold_start": listings.cold[lo:hi],
        "shown": listings.shown[lo:hi], "status": take(STATUSES, listings.status[lo:hi]),
        "created_at": utc(listings.created_at[lo:hi]),
    }


def user_truth(users: Users, geo: Geography, lo: int, hi: int) -> dict[str, Any]:
    return {
        "user_id": entity_ids("user", np.arange(lo, hi)), "region": take(geo.codes, users.region[lo:hi]),
        "segment": take(SEGMENTS, users.segment[lo:hi]), "price_sensitivity": users.price_sensitivity[lo:hi],
        "sessions_per_day": users.activity[lo:hi], "fraud_account": users.fraud_pool[lo:hi],
        "created_at": utc(users.created_at[lo:hi]),
        "device_1": entity_ids("device", users.device[lo:hi, 0]),
        "device_2": entity_ids("device", users.device[lo:hi, 1]),
        "instrument_1": entity_ids("instrument", users.instrument[lo:hi, 0]),
        "instrument_2": entity_ids("instrument", users.instrument[lo:hi, 1]),
        "home_ip": ip_strings(users.home_ip[lo:hi]),
        "email_domain": take(EMAIL_DOMAINS, users.email_domain[lo:hi]),
        "preferred_device_type": take(vocab.DEVICE_TYPES, users.device_type[lo:hi]),
    }


def write_sellers(directory: Path, sellers: Sellers, listings: Listings, geo: Geography) -> None:
    n = len(sellers)
    write_table(directory / "sellers.parquet", {
        "seller_id": entity_ids("seller", np.arange(n)), "region": take(geo.codes, sellers.region),
        "quality": sellers.quality, "handling_days": sellers.handling_days, "size_weight": sellers.weight,
        "listings": np.bincount(listings.seller, minlength=n),
        "shown_listings": np.bincount(listings.seller[listings.shown], minlength=n),
        "cold_start_listings": np.bincount(listings.seller[listings.cold], minlength=n),
        "external_history": sellers.external_ref >= 0,
        "created_at": utc(sellers.created_at),
    })


def write_fraud(directory: Path, fraud: FraudProcess | None) -> int:
    parts = fraud.truth if fraud else []
    cols = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64)
            for k in ("transaction", "user", "pattern", "incident", "ring")}
    order = np.argsort(cols["transaction"], kind="stable")
    rows = write_table(directory / "fraud_transactions.csv", {
        "transaction_id": entity_ids("transaction", cols["transaction"][order]),
        "user_id": entity_ids("user", cols["user"][order]),
        "pattern": take(PATTERNS, cols["pattern"][order]),
        "incident_id": cols["incident"][order].astype(np.int64),
        "ring_id": entity_ids("ring", cols["ring"][order]),
    })
    rings = []
    for ring in fraud.rings if fraud else []:
        rings.append({
            "ring_id": entity_ids("ring", np.array([ring["ring"]]))[0].as_py(),
            "incident_id": ring["incident"],
            "members": entity_ids("user", np.array(ring["members"])).to_pylist(),
            "devices": entity_ids("device", np.array(ring["devices"])).to_pylist(),
            "instruments": entity_ids("instrument", np.array(ring["instruments"])).to_pylist(),
            "ips": ip_strings(np.array(ring["ips"])).to_pylist(),
            "email_domain": ring["email_domain"], "ip_region": ring["ip_region"],
            "shipping_region": ring["shipping_region"],
            "burst_start": utc(np.array([ring["burst_start"]]))[0].as_py().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "burst_end": utc(np.array([ring["burst_end"]]))[0].as_py().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "transactions": entity_ids("transaction", np.array(ring["transactions"])).to_pylist(),
            "orders": entity_ids("order", np.array(ring["orders"])).to_pylist(),
        })
    (directory / "fraud_rings.json").write_text(json.dumps({"rings": rings}, indent=2) + "\n")
    return rows
