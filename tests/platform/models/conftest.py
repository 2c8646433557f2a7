"""Registry fixtures: one registry per backend for the whole session, because opening a fresh
MLflow store runs its schema migrations (seconds). Tests stay independent by registering
under a model name of their own (`model_name`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import lightgbm as lgb
import numpy as np
import pytest

from marketpilot.platform.config import Settings, load_settings
from marketpilot.platform.models.artifacts import ArrayBundle
from marketpilot.platform.models.records import CodeVersion
from marketpilot.platform.models.registry import ModelRegistry
from support.services import postgres_database


@pytest.fixture(scope="session")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(home=tmp_path_factory.mktemp("home-sqlite"))


@pytest.fixture(scope="session")
def pg_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with postgres_database() as url:
        yield load_settings(home=tmp_path_factory.mktemp("home-pg"), database_url=url)


@pytest.fixture(scope="session")
def sqlite_registry(sqlite_settings: Settings) -> Iterator[ModelRegistry]:
    with ModelRegistry.from_settings(sqlite_settings) as registry:
        yield registry


@pytest.fixture(scope="session")
def pg_registry(pg_settings: Settings) -> Iterator[ModelRegistry]:
    with ModelRegistry.from_settings(pg_settings) as registry:
        yield registry


@pytest.fixture(scope="session", params=["sqlite", "pg"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def registry(backend: str, request: pytest.FixtureRequest) -> ModelRegistry:
    """The same assertions run on the SQLite store and on the PostgreSQL store."""
    return request.getfixturevalue(f"{backend}_registry")


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest) -> Settings:
    return request.getfixturevalue(f"{backend}_settings")


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    return f"{request.node.originalname.removeprefix('test_')[:40]}-{uuid.uuid4().hex[:8]}"


Data = tuple[np.ndarray, np.ndarray]


@pytest.fixture(scope="session")
def data() -> Data:
    """A tiny synthetic binary-classification set (X, y): the label depends on two of five features."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 5))
    y = ((X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.3, size=300)) > 0).astype(np.int64)
    return X, y


@pytest.fixture(scope="session")
def boosters(data: Data) -> tuple[lgb.Booster, lgb.Booster]:
    """Two genuinely different LightGBM models of the same data (v1 and v2 of a model)."""
    return _train_booster(data, num_leaves=4), _train_booster(data, num_leaves=15)


def _train_booster(data: Data, num_leaves: int, rounds: int = 15) -> lgb.Booster:
    params = {
        "objective": "binary",
        "num_leaves": num_leaves,
        "learning_rate": 0.2,
        "min_data_in_leaf": 5,
        "num_threads": 1,
        "deterministic": True,
        "seed": 1,
        "verbose": -1,
    }
    return lgb.train(params, lgb.Dataset(data[0], label=data[1]), num_boost_round=rounds)


def tiny_bundle(marker: int) -> ArrayBundle:
    return ArrayBundle(arrays={"scores": np.full(3, marker, dtype=np.float32)}, metadata={"marker": marker})


# Given explicitly so these helper registrations skip the git calls (lineage has its own tests).
CODE = CodeVersion(commit="0" * 40, dirty=False, package_version="0.0.0")
RegisterVersions = Callable[[str, int], list[int]]


@pytest.fixture
def register_versions(registry: ModelRegistry) -> RegisterVersions:
    """Register N tiny array-bundle versions of a model (the fast way to get versions)."""

    def register(name: str, count: int) -> list[int]:
        return [
            registry.log_training_run(
                name, model=tiny_bundle(i), params={"i": i}, metrics={}, data_fingerprint=f"{i:064x}", code=CODE
            ).version
            for i in range(count)
        ]

    return register
