"""Saving and loading model files, one flavour per kind of model marketpilot trains.

A model directory holds the flavour's files and a small `marketpilot-model.json` manifest
naming the flavour, so a directory can be loaded on its own: serving processes read models
at start-up or on promotion with this module alone, without MLflow's pyfunc machinery.

Flavours:

- ``lightgbm``: a `lightgbm.Booster` in LightGBM's native text format (`model.txt`),
  readable by any LightGBM version and by other runtimes.
- ``sklearn``: a scikit-learn estimator (LightGBM's sklearn wrappers included) in skops'
  format (`model.skops`). Unlike pickle/joblib, skops refuses to build types it has not
  been told to trust; we trust types from a fixed set of libraries and refuse others with
  an :class:`ArtifactError`, so a tampered artifact cannot run arbitrary code on load.
- ``arrays``: an :class:`ArrayBundle`, i.e. named numpy arrays (`arrays.npz`, uncompressed
  so loading is a plain read, never pickled) plus JSON metadata (`metadata.json`). This is
  the shape of every precomputed request path (embeddings, an index, lookup tables).
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast, get_args

import numpy as np

from marketpilot.platform.models.errors import ArtifactError

Flavor: TypeAlias = Literal["lightgbm", "sklearn", "arrays"]
FLAVORS: tuple[str, ...] = get_args(Flavor)
MANIFEST = "marketpilot-model.json"
FORMAT_VERSION = 1

# Top-level modules whose types a skops file may contain. marketpilot's own estimators are
# our code; the rest are the libraries they are built from.
TRUSTED_SKOPS_MODULES = frozenset({"sklearn", "lightgbm", "numpy", "scipy", "collections", "marketpilot"})

JsonValue: TypeAlias = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True, eq=False)
class ArrayBundle:
    """Named numpy arrays plus small JSON metadata, e.g. item embeddings and their ids.

    Array names must be Python identifiers (they become `.npz` member names); arrays must
    not hold Python objects (they are stored without pickle).
    """

    arrays: Mapping[str, np.ndarray]
    metadata: Mapping[str, JsonValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, array in self.arrays.items():
            if not name.isidentifier():
                raise ValueError(f"array name {name!r} is not an identifier")
            if not isinstance(array, np.ndarray):
                raise TypeError(f"array {name!r} is a {type(array).__name__}, not a numpy array")
            if array.dtype.hasobject:
                raise TypeError(f"array {name!r} has dtype object; store strings as a fixed-width 'U' array")

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def flavor_of(model: object) -> Flavor:
    """The flavour that can store `model`; TypeError naming the supported kinds otherwise."""
    if isinstance(model, ArrayBundle):
        return "arrays"
    cls = type(model)
    if cls.__module__.startswith("lightgbm") and cls.__name__ == "Booster":
        return "lightgbm"
    sklearn_base = sys.modules.get("sklearn.base")  # an estimator implies sklearn was imported
    if sklearn_base is not None and isinstance(model, sklearn_base.BaseEstimator):
        return "sklearn"
    raise TypeError(
        f"cannot store a {cls.__module__}.{cls.__qualname__}: supported are lightgbm.Booster, "
        "scikit-learn estimators and ArrayBundle"
    )


def save_model(model: object, directory: Path) -> Flavor:
    """Write `model` into the empty or missing `directory`; returns its flavour."""
    flavor = flavor_of(model)
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ArtifactError(f"model directory {directory} is not empty")
    if flavor == "lightgbm":
        model.save_model(str(directory / "model.txt"))  # type: ignore[attr-defined]
    elif flavor == "sklearn":
        import skops.io

        skops.io.dump(model, directory / "model.skops")
    else:
        assert isinstance(model, ArrayBundle)
        _write_npz(directory / "arrays.npz", model.arrays)
        (directory / "metadata.json").write_text(json.dumps(model.metadata, sort_keys=True))
    manifest = {"flavor": flavor, "format_version": FORMAT_VERSION}
    (directory / MANIFEST).write_text(json.dumps(manifest, sort_keys=True))
    return flavor


def read_flavor(directory: Path) -> Flavor:
    """The flavour recorded in `directory`'s manifest."""
    path = directory / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{directory} is not a marketpilot model directory (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from None
    flavor = manifest.get("flavor")
    if flavor not in FLAVORS:
        raise ArtifactError(f"{path} names unknown flavour {flavor!r}; known: {', '.join(FLAVORS)}")
    if manifest.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ArtifactError(f"{path} was written by a newer marketpilot (format {manifest['format_version']})")
    return cast(Flavor, flavor)


def load_model(directory: Path) -> object:
    """Read back the model saved in `directory` by :func:`save_model`."""
    flavor = read_flavor(directory)
    if flavor == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_file=str(_require(directory / "model.txt")))
    if flavor == "sklearn":
        return _load_skops(_require(directory / "model.skops"))
    with np.load(_require(directory / "arrays.npz"), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    metadata = json.loads(_require(directory / "metadata.json").read_text())
    return ArrayBundle(arrays=arrays, metadata=metadata)


def _load_skops(path: Path) -> object:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = sorted(t for t in untrusted if t.split(".", 1)[0] not in TRUSTED_SKOPS_MODULES)
    if refused:
        raise ArtifactError(f"{path} contains types outside the trusted libraries: {', '.join(refused)}")
    return skops.io.load(path, trusted=untrusted)


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """`np.savez` without its keyword clash (an array named `file`) and never pickling."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ArtifactError(f"model file {path} is missing")
    return path
