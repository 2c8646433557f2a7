"""Typed records the registry hands across package boundaries.

Plain frozen dataclasses rather than MLflow entities: callers (CLI, serving, capabilities)
must not depend on MLflow's types, and MLflow's string-typed versions and millisecond
timestamps are converted here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """The code a model was trained with.

    `commit` is the git commit of the working tree holding the marketpilot package, or None
    when it does not live in a git checkout (an installed wheel, a container image); `dirty`
    says whether the package sources differed from that commit (None when unknown).
    """

    commit: str | None
    dirty: bool | None
    package_version: str


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a model, with the lineage of the run that produced it."""

    name: str
    version: int
    flavor: str
    run_id: str
    source: str  # URI of the directory holding the model files
    data_fingerprint: str
    code: CodeVersion
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]  # the caller's tags, without the registry's own bookkeeping
    aliases: tuple[str, ...]
    created_at: datetime
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PromotionEvent:
    """One change of champion: a promotion or a rollback (`previous` is the champion replaced)."""

    action: Literal["promote", "rollback"]
    version: int
    previous: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RegisteredModelSummary:
    """One line of `marketpilot models list`."""

    name: str
    versions: int
    latest_version: int | None
    champion: int | None
    challenger: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ModelDetails:
    """Everything `marketpilot models show NAME` prints."""

    name: str
    description: str | None
    versions: tuple[ModelVersion, ...]  # newest first
    aliases: Mapping[str, int] = field(default_factory=dict)
    promotions: tuple[PromotionEvent, ...] = ()  # oldest first

    @property
    def champion(self) -> ModelVersion | None:
        return self._by_alias(CHAMPION)

    @property
    def challenger(self) -> ModelVersion | None:
        return self._by_alias(CHALLENGER)

    def _by_alias(self, alias: str) -> ModelVersion | None:
        number = self.aliases.get(alias)
        return next((v for v in self.versions if v.version == number), None)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model object together with the registered version it was loaded from."""

    version: ModelVersion
    model: object
