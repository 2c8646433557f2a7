"""Models: the registry (versions, lineage, aliases, promotion) and model files.

- `registry`: :class:`ModelRegistry` and the functions behind `marketpilot models ...`.
- `artifacts`: saving/loading LightGBM, scikit-learn and array-bundle models.
- `fingerprints`: a stable hash of training data. `lineage`: the code version.
- `store`: where the registry lives per profile. `records`, `errors`: what crosses the boundary.

Names are re-exported lazily: importing this package (say, for a serving module) does not
import MLflow, LightGBM or scikit-learn; each is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marketpilot.platform.models.artifacts import ArrayBundle, load_model, save_model
    from marketpilot.platform.models.errors import (
        ArtifactError,
        ModelNotFound,
        NoPreviousChampion,
        RegistryError,
    )
    from marketpilot.platform.models.fingerprints import fingerprint
    from marketpilot.platform.models.lineage import code_version
    from marketpilot.platform.models.records import (
        CHALLENGER,
        CHAMPION,
        CodeVersion,
        LoadedModel,
        ModelDetails,
        ModelVersion,
        PromotionEvent,
        RegisteredModelSummary,
    )
    from marketpilot.platform.models.registry import (
        ModelRegistry,
        list_models,
        open_registry,
        promote,
        rollback,
        show,
    )

_EXPORTS = {
    "ArrayBundle": "artifacts",
    "load_model": "artifacts",
    "save_model": "artifacts",
    "ArtifactError": "errors",
    "ModelNotFound": "errors",
    "NoPreviousChampion": "errors",
    "RegistryError": "errors",
    "fingerprint": "fingerprints",
    "code_version": "lineage",
    "CHALLENGER": "records",
    "CHAMPION": "records",
    "CodeVersion": "records",
    "LoadedModel": "records",
    "ModelDetails": "records",
    "ModelVersion": "records",
    "PromotionEvent": "records",
    "RegisteredModelSummary": "records",
    "ModelRegistry": "registry",
    "list_models": "registry",
    "open_registry": "registry",
    "promote": "registry",
    "rollback": "registry",
    "show": "registry",
}

__all__ = [
    "ArrayBundle",
    "ArtifactError",
    "CHALLENGER",
    "CHAMPION",
    "CodeVersion",
    "LoadedModel",
    "ModelDetails",
    "ModelNotFound",
    "ModelRegistry",
    "ModelVersion",
    "NoPreviousChampion",
    "PromotionEvent",
    "RegisteredModelSummary",
    "RegistryError",
    "code_version",
    "fingerprint",
    "list_models",
    "load_model",
    "open_registry",
    "promote",
    "rollback",
    "save_model",
    "show",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
