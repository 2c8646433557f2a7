"""Turning a registry model into a :class:`~.serving.ServedModel`, per flavour.

The V2 metadata is read off the model, so it cannot drift from what the model accepts:

- ``lightgbm`` (a `Booster`): input ``input__0`` FP32 [-1, num_feature()], output
  ``output__0`` FP32 [-1] (or [-1, classes] for multiclass objectives), the same values as
  `booster.predict(x)` (LightGBM reads FP32 rows into doubles, so FP32 input loses nothing
  LightGBM would have kept; the FP32 output is the double prediction rounded once).
  Predictions run with `num_threads=1`: on a shared 2-core server, OpenMP start-up and
  contention cost a one-row call ten times its work (57 µs vs 580 µs measured); parallelism
  comes from concurrent requests and micro-batching instead.
- ``sklearn``: input ``input__0`` FP64 [-1, n_features_in_] (what scikit-learn computes
  in), output ``output__0``: `predict_proba` for classifiers (FP64 [-1, classes]), else
  `predict` (FP64 [-1] for regressors, the class labels' datatype for a classifier without
  probabilities).
- ``arrays``: an :class:`~.artifacts.ArrayBundle` is data, not a model: the capability that
  owns it knows how to score with it and passes an adapter to `ModelServer.load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from marketpilot.platform.models.records import LoadedModel, ModelVersion
from marketpilot.platform.models.serving import ServedModel, TensorSpec
from marketpilot.platform.models.serving_protocol import datatype_of

INPUT = "input__0"
OUTPUT = "output__0"


def adapt(loaded: LoadedModel) -> ServedModel:
    """The served form of a model loaded from the registry, chosen by its flavour."""
    record = loaded.version
    flavor = record.flavor
    if flavor == "lightgbm":
        return booster_model(loaded.model, name=record.name, version=str(record.version), source=record)
    if flavor == "sklearn":
        return sklearn_model(loaded.model, name=record.name, version=str(record.version), source=record)
    raise TypeError(
        f"model {record.name!r} version {record.version} has flavour {flavor!r}, which has no default "
        "way to predict: pass an adapter (LoadedModel -> ServedModel) to ModelServer.load"
    )


def booster_model(booster: Any, *, name: str, version: str, source: ModelVersion | None = None) -> ServedModel:
    """Serve a `lightgbm.Booster`."""
    features = int(booster.num_feature())
    classes = int(booster.num_model_per_iteration())
    out_shape: tuple[int, ...] = (-1,) if classes == 1 else (-1, classes)

    def predict(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {OUTPUT: booster.predict(inputs[INPUT], num_threads=1)}

    return ServedModel(
        name=name,
        version=version,
        platform="lightgbm",
        inputs=(TensorSpec(INPUT, "FP32", (-1, features)),),
        outputs=(TensorSpec(OUTPUT, "FP32", out_shape),),
        predict_fn=predict,
        row_independent=True,
        source=source,
    )


def sklearn_model(estimator: Any, *, name: str, version: str, source: ModelVersion | None = None) -> ServedModel:
    """Serve a fitted scikit-learn estimator (LightGBM's sklearn wrappers included)."""
    features = int(getattr(estimator, "n_features_in_", -1))
    classes = getattr(estimator, "classes_", None)
    method = estimator.predict
    if classes is not None and hasattr(estimator, "predict_proba"):
        method = estimator.predict_proba
        output = TensorSpec(OUTPUT, "FP64", (-1, len(classes)))
    elif classes is not None:
        output = TensorSpec(OUTPUT, datatype_of(np.asarray(classes).dtype), (-1,))
    else:
        output = TensorSpec(OUTPUT, "FP64", (-1,))

    def predict(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {OUTPUT: method(inputs[INPUT])}

    return ServedModel(
        name=name,
        version=version,
        platform="sklearn",
        inputs=(TensorSpec(INPUT, "FP64", (-1, features)),),
        outputs=(output,),
        predict_fn=predict,
        row_independent=True,
        source=source,
    )
