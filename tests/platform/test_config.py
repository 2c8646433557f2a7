from __future__ import annotations

from pathlib import Path

import pytest

from marketpilot.platform.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MARKETPILOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_embedded_is_the_default_and_needs_no_server() -> None:
    settings = load_settings()
    assert settings.profile == "embedded"
    assert settings.db_url.startswith("sqlite:///") and settings.db_url.endswith(".marketpilot/marketpilot.db")


def test_distributed_profile_names_every_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPILOT_PROFILE", "distributed")
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    for name in ("MARKETPILOT_DATABASE_URL", "MARKETPILOT_REDIS_URL", "MARKETPILOT_KAFKA_BOOTSTRAP"):
        assert name in message


def test_distributed_profile_rejects_a_sqlite_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPILOT_PROFILE", "distributed")
    monkeypatch.setenv("MARKETPILOT_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("MARKETPILOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("MARKETPILOT_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    with pytest.raises(ConfigError, match="MARKETPILOT_DATABASE_URL must be a postgresql"):
        load_settings()


def test_a_wrong_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPILOT_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="MARKETPILOT_PORT"):
        load_settings()
    monkeypatch.setenv("MARKETPILOT_PORT", "8080")
    monkeypatch.setenv("MARKETPILOT_PROFILE", "cluster")
    with pytest.raises(ConfigError, match="MARKETPILOT_PROFILE"):
        load_settings()


def test_toml_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "marketpilot.toml").write_text('port = 9001\nlog_level = "debug"\n')
    assert load_settings().port == 9001
    monkeypatch.setenv("MARKETPILOT_PORT", "9002")
    settings = load_settings()
    assert (settings.port, settings.log_level) == (9002, "debug")


def test_unknown_key_in_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "marketpilot.toml").write_text("prot = 9001\n")
    with pytest.raises(ConfigError, match="PROT"):
        load_settings()


def test_fraud_features_follow_the_profile_and_redis_needs_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_settings().fraud_features_on_redis  # embedded: in the process
    monkeypatch.setenv("MARKETPILOT_FRAUD_FEATURES", "redis")
    with pytest.raises(ConfigError, match="MARKETPILOT_FRAUD_FEATURES=redis needs MARKETPILOT_REDIS_URL"):
        load_settings()
    monkeypatch.setenv("MARKETPILOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().fraud_features_on_redis
