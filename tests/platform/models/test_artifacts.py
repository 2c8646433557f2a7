"""Model files per flavour: saved, loaded back identical, and refused when untrustworthy."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from marketpilot.platform.models.artifacts import ArrayBundle, flavor_of, load_model, read_flavor, save_model
from marketpilot.platform.models.errors import ArtifactError

Data = tuple[np.ndarray, np.ndarray]


def test_a_lightgbm_booster_is_stored_as_native_text_and_predicts_identically(
    tmp_path: Path, data: Data, boosters: tuple[lgb.Booster, lgb.Booster]
) -> None:
    assert save_model(boosters[1], tmp_path / "m") == "lightgbm"
    assert (tmp_path / "m" / "model.txt").read_text().startswith("tree")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, lgb.Booster)
    assert np.array_equal(loaded.predict(data[0]), boosters[1].predict(data[0]))


def test_scikit_learn_estimators_including_lightgbm_wrappers_round_trip(tmp_path: Path, data: Data) -> None:
    X, y = data
    for i, estimator in enumerate([LogisticRegression(), lgb.LGBMClassifier(n_estimators=5, verbose=-1)]):
        estimator.fit(X, y)
        assert save_model(estimator, tmp_path / str(i)) == "sklearn"
        loaded = load_model(tmp_path / str(i))
        assert np.array_equal(loaded.predict_proba(X), estimator.predict_proba(X))  # type: ignore[attr-defined]


def test_an_array_bundle_round_trips_arrays_and_metadata(tmp_path: Path) -> None:
    bundle = ArrayBundle(
        {"embeddings": np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32),
         "ids": np.array(["a", "b", "c", "d", "e"]), "file": np.arange(5)},
        {"dim": 3, "index": {"kind": "flat"}},
    )
    save_model(bundle, tmp_path / "b")
    loaded = load_model(tmp_path / "b")
    assert isinstance(loaded, ArrayBundle)
    assert sorted(loaded.arrays) == ["embeddings", "file", "ids"]
    for name, array in bundle.arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
    assert loaded.metadata == {"dim": 3, "index": {"kind": "flat"}}


class Homemade:
    """A type from outside the trusted libraries."""

    def __init__(self) -> None:
        self.value = 1


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path: Path, data: Data) -> None:
    estimator = LogisticRegression().fit(*data)
    estimator.extra_ = Homemade()
    save_model(estimator, tmp_path / "m")
    with pytest.raises(ArtifactError, match=r"contains types outside the trusted libraries: .*Homemade"):
        load_model(tmp_path / "m")


def test_a_directory_without_a_manifest_or_with_an_unknown_flavour_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="is not a marketpilot model directory"):
        load_model(tmp_path)
    (tmp_path / "marketpilot-model.json").write_text(json.dumps({"flavor": "onnx"}))
    with pytest.raises(ArtifactError, match="names unknown flavour 'onnx'; known: lightgbm, sklearn, arrays"):
        read_flavor(tmp_path)
    (tmp_path / "marketpilot-model.json").write_text(json.dumps({"flavor": "lightgbm", "format_version": 1}))
    with pytest.raises(ArtifactError, match="model file .*model.txt is missing"):
        load_model(tmp_path)


def test_saving_refuses_unsupported_models_and_non_empty_directories(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot store a builtins.dict: supported are lightgbm.Booster"):
        flavor_of({"weights": [1, 2]})
    (tmp_path / "leftover.txt").write_text("x")
    with pytest.raises(ArtifactError, match="is not empty"):
        save_model(ArrayBundle({"a": np.ones(1)}), tmp_path)


@pytest.mark.parametrize(
    ("arrays", "error", "message"),
    [
        ({"not valid": np.ones(1)}, ValueError, "array name 'not valid' is not an identifier"),
        ({"a": [1, 2]}, TypeError, "array 'a' is a list, not a numpy array"),
        ({"a": np.array([{}, 1], dtype=object)}, TypeError, "array 'a' has dtype object"),
    ],
)
def test_array_bundles_refuse_what_cannot_be_stored_without_pickle(
    arrays: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ArrayBundle(arrays)  # type: ignore[arg-type]
