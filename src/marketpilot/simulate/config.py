"""What a simulation run is asked to produce, validated before any work starts.

A config is the whole recipe: together with the generator's code version it determines every
byte written, so it is frozen and is copied verbatim into `manifest.json`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

# Exponent of the minor unit per currency. Mirrors domain.entities.CURRENCY_EXPONENT; the
# simulator sits below the domain layer, so it keeps its own copy and a test checks they agree.
CURRENCY_EXPONENT: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RON": 2, "CAD": 2, "AUD": 2, "JPY": 0, "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2,
}


@dataclass(frozen=True)
class SimulationConfig:
    """Size and shape of a simulated marketplace.

    `listings`, `users` and `days` set the scale; everything else has defaults chosen so that
    the output looks like a plausible marketplace at any scale (see the field comments).
    """

    listings: int
    users: int
    days: int
    seed: int = 0
    sellers: int | None = None  # default: one seller per 25 listings
    start: date = date(2026, 1, 1)  # first simulated day (UTC); the window is [start, start+days)
    currency: str = "EUR"
    latent_dim: int = 16  # dimension of user taste and item factors
    sessions_per_user_per_week: float = 1.75
    cold_start_share: float = 0.05  # share of listings created in the last days, never shown
    cold_start_days: int = 3  # cold-start listings are created within this many final days
    external_history_share: float = 0.15  # sellers carrying a linked history elsewhere
    fraud_rate: float = 0.01  # target share of fraudulent payment transactions
    sales_listings: int = 500  # listings in the daily sales panel (sales.csv)
    machines: int = 12  # warehouse machines with sensor streams
    sensor_interval_minutes: int = 15

    def __post_init__(self) -> None:
        for name in ("listings", "users", "days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.sellers is not None and (not isinstance(self.sellers, int) or self.sellers < 1):
            raise ValueError(f"sellers must be a positive integer or None, got {self.sellers!r}")
        if self.sellers is not None and self.sellers > self.listings:
            raise ValueError(f"sellers ({self.sellers}) cannot exceed listings ({self.listings})")
        if self.currency not in CURRENCY_EXPONENT:
            raise ValueError(
                f"unknown currency {self.currency!r}; expected one of {', '.join(sorted(CURRENCY_EXPONENT))}"
            )
        if not 2 <= self.latent_dim <= 256:
            raise ValueError(f"latent_dim must be between 2 and 256, got {self.latent_dim}")
        if not (math.isfinite(self.sessions_per_user_per_week) and 0 < self.sessions_per_user_per_week <= 100):
            raise ValueError(
                f"sessions_per_user_per_week must be in (0, 100], got {self.sessions_per_user_per_week}"
            )
        for name, high in (("cold_start_share", 0.5), ("external_history_share", 1.0), ("fraud_rate", 0.2)):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= high):
                raise ValueError(f"{name} must be between 0 and {high}, got {value}")
        if self.cold_start_days < 1:
            raise ValueError(f"cold_start_days must be at least 1, got {self.cold_start_days}")
        if self.sales_listings < 0:
            raise ValueError(f"sales_listings must be non-negative, got {self.sales_listings}")
        if self.machines < 0:
            raise ValueError(f"machines must be non-negative, got {self.machines}")
        if not 1 <= self.sensor_interval_minutes <= 24 * 60:
            raise ValueError(
                f"sensor_interval_minutes must be between 1 and 1440, got {self.sensor_interval_minutes}"
            )
        if self.start.year < 1971 or self.start.year > 9000:
            raise ValueError(f"start must be a date between 1971 and 9000, got {self.start}")

    @property
    def n_sellers(self) -> int:
        return self.sellers if self.sellers is not None else max(1, self.listings // 25)

    @property
    def start_epoch(self) -> int:
        """Start of the window as Unix seconds (midnight UTC)."""
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp())

    @property
    def end_epoch(self) -> int:
        """End of the window (exclusive): the simulated 'now'."""
        return self.start_epoch + self.days * 86_400

    @property
    def minor_per_major(self) -> int:
        return 10 ** CURRENCY_EXPONENT[self.currency]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        return data
