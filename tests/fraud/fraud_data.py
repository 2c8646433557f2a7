"""Small labelled payment histories for the fraud tests: legitimate buyers with their own
cards and devices, and a ring of fresh accounts sharing two devices and three cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from marketpilot.fraud.base import FraudRequest
from marketpilot.fraud.model import FraudModel

START = datetime(2026, 3, 1, tzinfo=UTC)


def history(n_legit: int = 1500, rings: int = 6, seed: int = 3) -> tuple[list[FraudRequest], np.ndarray]:
    """(requests in time order, labels) over 30 days."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[FraudRequest, int]] = []
    users = 300
    for i in range(n_legit):
        u = int(rng.integers(0, users))
        at = START + timedelta(seconds=int(rng.integers(0, 30 * 86_400)))
        region = f"r{u % 5}"
        rows.append((FraudRequest(
            transaction_id=f"t{i}", user_id=f"u{u}", amount_minor=int(rng.lognormal(8, 0.6)), currency="EUR",
            instrument_fingerprint=f"card-{u}", device_id=f"dev-{u}", ip=f"10.0.{u % 250}.1",
            email_domain="mail.example", ip_region=region, shipping_region=region, timestamp=at,
            account_created_at=START - timedelta(days=100 + u),
        ), 0))
    for r in range(rings):
        start = START + timedelta(days=2 + 4.5 * r)
        devices = [f"ring{r}-dev{j}" for j in range(2)]
        cards = [f"ring{r}-card{j}" for j in range(3)]
        for k in range(12):
            member = f"ring{r}-m{k % 4}"
            rows.append((FraudRequest(
                transaction_id=f"ring{r}-t{k}", user_id=member, amount_minor=int(rng.integers(40_000, 90_000)),
                currency="EUR", instrument_fingerprint=cards[k % 3], device_id=devices[k % 2],
                ip=f"203.0.113.{r}", email_domain="tempmail.example", ip_region="r9", shipping_region="r1",
                timestamp=start + timedelta(minutes=8 * k), account_created_at=start - timedelta(hours=5),
            ), 1))
    rows.sort(key=lambda pair: (pair[0].timestamp, pair[0].transaction_id))
    return [r for r, _ in rows], np.array([y for _, y in rows], dtype=np.int64)


@dataclass
class Fitted:
    """A model fitted on `history()`, with the rows it saw (the session fixture `fitted`)."""

    model: FraudModel
    requests: list[FraudRequest]
    labels: np.ndarray
    X: np.ndarray
