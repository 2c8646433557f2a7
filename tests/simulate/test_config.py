"""A bad config is refused up front with a message that names the field."""

from __future__ import annotations

from datetime import date

import pytest

from marketpilot.domain.entities import CURRENCY_EXPONENT
from marketpilot.simulate import SimulationConfig
from marketpilot.simulate import config as config_module


@pytest.mark.parametrize(("changes", "message"), [
    ({"listings": 0}, "listings must be a positive integer"),
    ({"users": -5}, "users must be a positive integer"),
    ({"days": 0}, "days must be a positive integer"),
    ({"days": 2.5}, "days must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"currency": "XXX"}, "unknown currency 'XXX'"),
    ({"sellers": 0}, "sellers must be a positive integer"),
    ({"sellers": 11}, "sellers (11) cannot exceed listings (10)"),
    ({"fraud_rate": 0.5}, "fraud_rate must be between 0 and 0.2"),
    ({"cold_start_share": -0.1}, "cold_start_share must be between 0 and 0.5"),
    ({"sessions_per_user_per_week": 0}, "sessions_per_user_per_week must be in (0, 100]"),
    ({"latent_dim": 1}, "latent_dim must be between 2 and 256"),
    ({"sensor_interval_minutes": 0}, "sensor_interval_minutes must be between 1 and 1440"),
    ({"start": date(1960, 1, 1)}, "start must be a date between 1971 and 9000"),
])
def test_invalid_configs_are_rejected_with_a_clear_message(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"listings": 10, "users": 10, "days": 1, **changes}
    with pytest.raises(ValueError) as info:
        SimulationConfig(**fields)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_defaults_describe_a_small_valid_window() -> None:
    config = SimulationConfig(listings=10_000, users=5_000, days=30, seed=7)
    assert config.n_sellers == 400
    assert config.end_epoch - config.start_epoch == 30 * 86_400
    assert config.to_json()["start"] == "2026-01-01"


def test_the_simulator_knows_the_same_currencies_as_the_domain() -> None:
    assert config_module.CURRENCY_EXPONENT == CURRENCY_EXPONENT
