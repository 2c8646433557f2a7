"""One small simulated marketplace shared by the ground-truth and schema tests (generated once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketpilot.simulate import SimulationConfig, SimulationSummary, simulate

SMALL = SimulationConfig(listings=4_000, users=4_000, days=21, seed=11, fraud_rate=0.02, sales_listings=400,
                         machines=6)


@pytest.fixture(scope="session")
def small_config() -> SimulationConfig:
    return SMALL


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory, small_config: SimulationConfig) -> SimulationSummary:
    return simulate(small_config, out=tmp_path_factory.mktemp("sim") / "out")


@pytest.fixture(scope="session")
def out(small_world: SimulationSummary) -> Path:
    return small_world.out
