"""The registry on SQLite and on PostgreSQL: versions, lineage, lookups, loading, errors."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from marketpilot.platform.config import Settings
from marketpilot.platform.models import artifacts
from marketpilot.platform.models import registry as registry_module
from marketpilot.platform.models.artifacts import ArrayBundle
from marketpilot.platform.models.errors import ModelNotFound
from marketpilot.platform.models.fingerprints import fingerprint
from marketpilot.platform.models.records import CodeVersion
from marketpilot.platform.models.registry import ModelRegistry

Data = tuple[np.ndarray, np.ndarray]
Boosters = tuple[lgb.Booster, lgb.Booster]
RegisterVersions = Callable[[str, int], list[int]]


def _log_two(registry: ModelRegistry, name: str, data: Data, boosters: Boosters) -> str:
    fp = fingerprint(*data)
    for leaves, booster, auc in ((4, boosters[0], 0.81), (15, boosters[1], 0.86)):
        registry.log_training_run(
            name,
            model=booster,
            params={"num_leaves": leaves, "objective": "binary"},
            metrics={"auc": auc},
            data_fingerprint=fp,
            tags={"team": "ranking"},
            description=f"{leaves} leaves",
        )
    return fp


def test_each_training_run_registers_a_new_version(registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters) -> None:
    fp = _log_two(registry, model_name, data, boosters)

    versions = registry.versions(model_name)
    assert [v.version for v in versions] == [2, 1]
    newest = versions[0]
    assert newest.flavor == "lightgbm"
    assert newest.params == {"num_leaves": "15", "objective": "binary"}
    assert newest.metrics == {"auc": 0.86}
    assert newest.tags == {"team": "ranking"}
    assert newest.description == "15 leaves"
    assert newest.data_fingerprint == fp
    assert newest.aliases == ()
    assert newest.run_id != versions[1].run_id


def test_a_run_records_the_code_version_it_was_trained_with(registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters) -> None:
    _log_two(registry, model_name, data, boosters)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, check=True
    ).stdout.strip()

    code = registry.get(model_name, 1).code
    assert code.commit == head
    assert isinstance(code.dirty, bool)
    assert code.package_version == metadata.version("marketpilot")


def test_an_explicit_code_version_is_recorded_as_given(registry: ModelRegistry, model_name: str) -> None:
    given = CodeVersion(commit=None, dirty=None, package_version="9.9.9")
    registry.log_training_run(
        model_name, model=ArrayBundle({"a": np.zeros(2)}), params={}, metrics={}, data_fingerprint="0" * 64, code=given
    )
    assert registry.get(model_name, 1).code == given


def test_loading_the_champion_predicts_exactly_like_the_trained_model(
    registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters
) -> None:
    _log_two(registry, model_name, data, boosters)
    registry.promote(model_name, 2)
    X = data[0]

    loaded = registry.load_version(model_name)
    assert loaded.version.version == 2
    assert isinstance(loaded.model, lgb.Booster)
    assert np.array_equal(loaded.model.predict(X), boosters[1].predict(X))
    first = registry.load(model_name, 1)
    assert np.array_equal(first.predict(X), boosters[0].predict(X))  # type: ignore[attr-defined]
    assert not np.array_equal(first.predict(X), loaded.model.predict(X))  # type: ignore[attr-defined]


def test_scikit_learn_and_array_bundle_models_round_trip(registry: ModelRegistry, model_name: str, data: Data) -> None:
    X, y = data
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    bundle = ArrayBundle({"embeddings": X.astype(np.float32), "ids": np.arange(len(X))}, {"dim": 5})
    registry.log_training_run(f"{model_name}-sk", model=pipeline, params={}, metrics={}, data_fingerprint="1" * 64)
    registry.log_training_run(f"{model_name}-arr", model=bundle, params={}, metrics={}, data_fingerprint="2" * 64)

    sk = registry.load(f"{model_name}-sk", 1)
    assert np.array_equal(sk.predict_proba(X), pipeline.predict_proba(X))  # type: ignore[attr-defined]
    arrays = registry.load(f"{model_name}-arr", "1")
    assert isinstance(arrays, ArrayBundle)
    assert np.array_equal(arrays["embeddings"], bundle["embeddings"])
    assert arrays.metadata == {"dim": 5}
    assert registry.get(f"{model_name}-sk", 1).flavor == "sklearn"


def test_model_files_are_read_in_place_from_a_local_artifact_root(registry: ModelRegistry, model_name: str) -> None:
    version = registry.log_training_run(
        model_name, model=ArrayBundle({"a": np.ones(3)}), params={}, metrics={}, data_fingerprint="3" * 64
    )
    directory = registry.model_dir(version)
    assert directory.is_dir() and (directory / "arrays.npz").is_file()
    assert directory.is_relative_to(Path(registry.location.artifact_root.removeprefix("file://")))


def test_unknown_models_versions_and_aliases_are_named_in_the_error(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 2)
    with pytest.raises(ModelNotFound, match="no registered model named 'no-such-model'"):
        registry.get("no-such-model", 1)
    with pytest.raises(ModelNotFound, match=rf"model '{model_name}' has no version 7 \(versions: 1, 2\)"):
        registry.get(model_name, 7)
    with pytest.raises(ModelNotFound, match=rf"model '{model_name}' has no 'challenger' alias \(aliases: none\)"):
        registry.load(model_name, "challenger")
    with pytest.raises(ModelNotFound, match="'no-such-model'"):
        registry.versions("no-such-model")
    with pytest.raises(ModelNotFound, match="'no-such-model'"):
        registry.show("no-such-model")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "has space"}, "model name 'has space' must be"),
        ({"name": "a/b"}, "model name 'a/b' must be"),
        ({"data_fingerprint": "abc"}, "data_fingerprint must be a sha256 hex digest, got 'abc'"),
        ({"tags": {"mlflow.user": "x"}}, "tag 'mlflow.user' uses a reserved prefix"),
        ({"tags": {"marketpilot.flavor": "x"}}, "tag 'marketpilot.flavor' uses a reserved prefix"),
    ],
)
def test_bad_training_run_arguments_are_refused_before_anything_is_written(
    sqlite_registry: ModelRegistry, model_name: str, kwargs: dict[str, object], message: str
) -> None:
    registry = sqlite_registry  # validation happens before the store is touched
    arguments: dict[str, object] = {
        "name": model_name,
        "model": ArrayBundle({"a": np.ones(1)}),
        "params": {},
        "metrics": {},
        "data_fingerprint": "4" * 64,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        registry.log_training_run(**arguments)  # type: ignore[arg-type]
    with pytest.raises(ModelNotFound):
        registry.versions(model_name)


def test_a_model_of_an_unsupported_kind_registers_nothing(registry: ModelRegistry, model_name: str) -> None:
    with pytest.raises(TypeError, match="cannot store a builtins.object"):
        registry.log_training_run(model_name, model=object(), params={}, metrics={}, data_fingerprint="5" * 64)
    with pytest.raises(ModelNotFound):
        registry.versions(model_name)


def test_list_and_show_summarise_versions_aliases_and_lineage(
    registry: ModelRegistry, model_name: str, data: Data, boosters: Boosters
) -> None:
    fp = _log_two(registry, model_name, data, boosters)
    registry.promote(model_name, 1)
    registry.set_alias(model_name, "challenger", 2)

    summary = next(m for m in registry.list_models() if m.name == model_name)
    assert (summary.versions, summary.latest_version, summary.champion, summary.challenger) == (2, 2, 1, 2)

    details = registry.show(model_name)
    assert details.aliases == {"challenger": 2, "champion": 1}
    assert [v.version for v in details.versions] == [2, 1]
    assert details.champion is not None and details.champion.metrics == {"auc": 0.81}
    assert details.challenger is not None and details.challenger.aliases == ("challenger",)
    assert {v.data_fingerprint for v in details.versions} == {fp}
    assert [(e.action, e.version, e.previous) for e in details.promotions] == [("promote", 1, None)]


def test_the_cli_functions_open_the_configured_registry(
    registry: ModelRegistry, settings: Settings, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 2)

    assert model_name in {m.name for m in registry_module.list_models(settings)}
    assert registry_module.promote(model_name, 1, settings).version == 1
    assert registry_module.promote(model_name, 2, settings).previous == 1
    event = registry_module.rollback(model_name, settings)
    assert (event.action, event.version, event.previous) == ("rollback", 1, 2)
    assert registry_module.show(model_name, settings).aliases == {"champion": 1}
    assert registry.get(model_name).version == 1  # the long-lived registry sees the change


def test_model_files_in_remote_storage_are_downloaded_once_into_the_cache(
    registry: ModelRegistry, model_name: str
) -> None:
    version = registry.log_training_run(
        model_name, model=ArrayBundle({"a": np.arange(4)}), params={}, metrics={}, data_fingerprint="7" * 64
    )
    # A `runs:/` URI is resolved through the tracking store, as an object-store URI would be
    # fetched from the bucket: either way the files are not read in place.
    remote = dataclasses.replace(version, source=f"runs:/{version.run_id}/model")

    directory = registry.model_dir(remote)
    assert directory.name == "1" and directory.parent.name == model_name
    assert np.array_equal(artifacts.load_model(directory)["a"], np.arange(4))  # type: ignore[index]
    assert registry.model_dir(remote) == directory


def test_tags_set_after_registration_are_read_back_and_lineage_tags_are_protected(
    registry: ModelRegistry, model_name: str
) -> None:
    registry.log_training_run(model_name, model=ArrayBundle({"a": np.ones(2)}), params={}, metrics={}, data_fingerprint="8" * 64)
    tagged = registry.set_version_tags(model_name, 1, {"retrain.outcome": "promoted"})
    assert tagged.tags["retrain.outcome"] == "promoted"
    assert registry.get(model_name, 1).tags["retrain.outcome"] == "promoted"
    with pytest.raises(ValueError, match="reserved prefix"):
        registry.set_version_tags(model_name, 1, {"marketpilot.flavor": "forged"})
    with pytest.raises(ModelNotFound):
        registry.set_version_tags(model_name, 9, {"x": "y"})


def test_extra_files_of_a_run_are_found_locally_and_through_the_tracking_store(
    registry: ModelRegistry, model_name: str, tmp_path: Path
) -> None:
    report = tmp_path / "report.txt"
    report.write_text("window stats")
    version = registry.log_training_run(
        model_name, model=ArrayBundle({"a": np.ones(2)}), params={}, metrics={}, data_fingerprint="9" * 64,
        extra_files=[report],
    )
    local = registry.extra_file(version, "report.txt")
    assert local is not None and local.read_text() == "window stats"
    remote = dataclasses.replace(version, source=f"runs:/{version.run_id}/model")
    fetched = registry.extra_file(remote, "report.txt")
    assert fetched is not None and fetched != local and fetched.read_text() == "window stats"
    assert registry.extra_file(version, "missing.txt") is None
    assert registry.extra_file(remote, "missing.txt") is None
    with pytest.raises(ValueError):
        registry.extra_file(version, "../model/arrays.npz")
