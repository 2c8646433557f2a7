"""One settings object for the whole process.

Read from `MARKETPILOT_*` environment variables and, if present, a `marketpilot.toml`
(path overridable with `MARKETPILOT_CONFIG`). Environment variables win over the file.
A wrong or missing setting raises :class:`ConfigError` naming the setting, at start-up.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "MARKETPILOT_"


class ConfigError(RuntimeError):
    """A setting is wrong or missing; the message names it."""


def _toml_path() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}CONFIG", "marketpilot.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    profile: Literal["embedded", "distributed"] = "embedded"
    home: Path = Field(default=Path(".marketpilot"), description="State directory (embedded profile).")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite under home by default.")
    model_artifact_root: str | None = Field(
        default=None,
        description="Directory or object-store URI for model files; home/mlartifacts by default. "
        "Set it to storage every replica shares in the distributed profile.",
    )
    redis_url: str | None = None
    kafka_bootstrap: str | None = None
    kafka_topic_prefix: str = "marketpilot."
    kafka_partitions: int = Field(default=6, ge=1, le=10_000)
    kafka_replication_factor: int = Field(default=1, ge=1, le=10)
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000, le=600_000)
    service_name: str = "marketpilot"
    event_source: str = "/marketpilot"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    page_size_max: int = Field(default=500, ge=1)
    auth_required: bool = True
    served_models: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Registered models `serve` loads by alias and serves on /v2 (comma-separated in the environment).",
    )
    model_refresh_seconds: float = Field(default=30.0, gt=0, description="How often served aliases are re-read.")
    drift_window_seconds: float = Field(default=300.0, gt=0, description="Drift monitoring window of served models.")
    recommend_exploration: Literal["off", "epsilon_greedy", "thompson", "linucb"] = Field(
        default="off", description="Slot-level exploration policy over recommendation slates."
    )
    recommend_epsilon: float = Field(default=0.1, ge=0, le=1, description="Epsilon of epsilon-greedy exploration.")
    recommend_explore_share: float = Field(
        default=0.05, ge=0, le=1, description="Cap on explored slots / all slots, per session class and day."
    )
    recommend_explore_gmv_per_day: float = Field(
        default=1e12, ge=0, description="Cap on expected GMV given up by exploring, minor units per class and day."
    )
    recommend_attribution_seconds: float = Field(
        default=1800.0, gt=0,
        description="How long clicks, carts and purchases naming a slate's request_id reward the exploration policy.",
    )
    recommend_cold_start_exposure: float = Field(
        default=0.0, ge=0, le=1, description="Target share of position-weighted exposure for cold-start listings (0: off)."
    )
    recommend_small_seller_exposure: float = Field(
        default=0.0, ge=0, le=1,
        description="Target share of position-weighted exposure for listings of small sellers (0: off).",
    )
    recommend_small_seller_max_listings: int = Field(
        default=20, ge=1, description="A seller with at most this many listings counts as small."
    )
    recommend_max_relevance_loss: float = Field(
        default=0.05, ge=0, lt=1, description="Share of a slate's DCG that fairness re-ranking may give up."
    )

    recommend_budget_ms: float = Field(
        default=50.0, gt=0, le=60_000,
        description="Latency budget of a recommendation request: when the time spent so far plus the model's recent "
        "p95 would exceed it, the fallback ranking serves the request (strategy fallback_latency_budget).",
    )
    outbox_retention_days: float = Field(
        default=30.0, gt=0, le=36_500,
        description="Outbox events older than this are deleted once every reader is done with them "
        "(embedded: every dispatcher consumer; distributed: the relay has published them). The recommendation "
        "audit, transparency and replay read slates no further back than this.",
    )
    outbox_purge_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the event worker runs the outbox and ledger retention purges."
    )
    processed_events_retention_days: float = Field(
        default=30.0, gt=0, le=36_500,
        description="Idempotency-ledger rows (processed_events) older than this are deleted once their event has "
        "left the outbox. Distributed profile: keep it at least as long as the Kafka topics' retention, or a "
        "consumer group rewound further back would run its handlers again.",
    )
    fraud_features: Literal["auto", "embedded", "redis"] = Field(
        default="auto",
        description="Where the fraud feature state lives: in the process, or in Redis shared by every replica "
        "(auto: Redis in the distributed profile).",
    )

    @field_validator("served_models", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()))

    @model_validator(mode="after")
    def _check_profile(self) -> Settings:
        if self.profile == "distributed":
            missing = [
                f"{ENV_PREFIX}{name.upper()}"
                for name in ("database_url", "redis_url", "kafka_bootstrap")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"profile 'distributed' needs {', '.join(missing)}")
            assert self.database_url is not None
            if not self.database_url.startswith("postgresql"):
                raise ValueError(
                    f"{ENV_PREFIX}DATABASE_URL must be a postgresql+psycopg:// URL in the distributed profile"
                )
        if self.fraud_features == "redis" and not self.redis_url:
            raise ValueError(f"{ENV_PREFIX}FRAUD_FEATURES=redis needs {ENV_PREFIX}REDIS_URL")
        if self.database_url is not None and "://" not in self.database_url:
            raise ValueError(f"{ENV_PREFIX}DATABASE_URL is not a URL: {self.database_url!r}")
        return self

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'marketpilot.db').resolve()}"

    @property
    def is_distributed(self) -> bool:
        return self.profile == "distributed"

    @property
    def fraud_features_on_redis(self) -> bool:
        return self.fraud_features == "redis" or (self.fraud_features == "auto" and self.is_distributed)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one message that names each bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            name = f"{ENV_PREFIX}{loc.upper()}" if loc else "settings"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
