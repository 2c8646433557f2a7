"""The model registry: versions, lineage, the `champion`/`challenger` aliases, promotion and rollback.

Built on MLflow's tracking server and model registry (a run per training, a registered
model version per run), used through one explicit `MlflowClient` per registry so several
registries can live in one process and nothing depends on MLflow's global state.

Every training run records its parameters, metrics, a fingerprint of its training data
(:func:`marketpilot.platform.models.fingerprints.fingerprint`) and the code version (git
commit, dirty flag, package version); the model files are written by
:mod:`marketpilot.platform.models.artifacts` and logged as run artifacts, and the version
points at them. Serving resolves an alias to a version once, at start-up or on promotion,
and loads the files without MLflow's pyfunc layer.

MLflow is imported when a registry is opened, not when this module is imported: the CLI
and the API import the records and errors here without paying MLflow's import time.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from marketpilot.platform.config import Settings, get_settings
from marketpilot.platform.models import artifacts
from marketpilot.platform.models.errors import ModelNotFound, NoPreviousChampion, RegistryError
from marketpilot.platform.models.lineage import code_version
from marketpilot.platform.models.promotions import (
    decode_history,
    encode_history,
    new_event,
    rollback_target,
)
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
from marketpilot.platform.models.store import StoreLocation, close_client, open_client, store_location

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion
    from mlflow.entities.model_registry import RegisteredModel
    from mlflow.tracking import MlflowClient

__all__ = [
    "ModelNotFound",
    "ModelRegistry",
    "NoPreviousChampion",
    "RegistryError",
    "list_models",
    "open_registry",
    "promote",
    "rollback",
    "show",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_RESERVED_TAG_PREFIXES = ("marketpilot.", "mlflow.")
_MODEL_DIR = "model"

_TAG_FLAVOR = "marketpilot.flavor"
_TAG_FINGERPRINT = "marketpilot.data_fingerprint"
_TAG_COMMIT = "marketpilot.code.commit"
_TAG_DIRTY = "marketpilot.code.dirty"
_TAG_PACKAGE = "marketpilot.code.package_version"
_TAG_PROMOTIONS = "marketpilot.promotions"
_MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"  # shown by MLflow's UI
_MLFLOW_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_MLFLOW_EXISTS = "RESOURCE_ALREADY_EXISTS"


class ModelRegistry:
    """Register, look up, promote and load models.

    Open one with :meth:`from_settings` (the profile decides the store, see
    :mod:`marketpilot.platform.models.store`) and close it, or use it as a context manager.
    Opening a fresh store creates and migrates MLflow's tables, which takes seconds once.
    """

    def __init__(self, location: StoreLocation, *, cache_dir: Path | None = None) -> None:
        self.location = location
        self._client: MlflowClient = open_client(location)
        self._cache_dir = cache_dir
        self._own_cache: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        return cls(store_location(settings), cache_dir=settings.home / "model-cache")

    def close(self) -> None:
        close_client(self._client)
        if self._own_cache is not None:
            self._own_cache.cleanup()
            self._own_cache = None

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- registering -----------------------------------------------------------------

    def log_training_run(
        self,
        name: str,
        *,
        model: object,
        params: Mapping[str, object],
        metrics: Mapping[str, float],
        data_fingerprint: str,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        extra_files: Sequence[Path] = (),
        code: CodeVersion | None = None,
    ) -> ModelVersion:
        """Record one training run of model `name` and register its model as a new version.

        `model` is stored by its flavour (see :mod:`~marketpilot.platform.models.artifacts`);
        `data_fingerprint` comes from :func:`~marketpilot.platform.models.fingerprints.fingerprint`;
        `code` defaults to the running code's version. Parameters are stored as strings.
        `extra_files` (reports, plots) are kept with the run under `extra/`. The new version
        gets no alias: promotion is a separate, deliberate step.
        """
        _check_name(name)
        if not _SHA256_HEX.fullmatch(data_fingerprint):
            raise ValueError(f"data_fingerprint must be a sha256 hex digest, got {data_fingerprint!r}")
        user_tags = dict(tags or {})
        for key in user_tags:
            if key.startswith(_RESERVED_TAG_PREFIXES):
                raise ValueError(f"tag {key!r} uses a reserved prefix ({', '.join(_RESERVED_TAG_PREFIXES)})")
        flavor = artifacts.flavor_of(model)  # fail before creating a run for a model we cannot store
        code = code if code is not None else code_version()
        lineage = {
            _TAG_FLAVOR: flavor,
            _TAG_FINGERPRINT: data_fingerprint,
            _TAG_COMMIT: code.commit or "",
            _TAG_DIRTY: "" if code.dirty is None else str(code.dirty).lower(),
            _TAG_PACKAGE: code.package_version,
        }
        run_tags = {**user_tags, **lineage}
        if code.commit:
            run_tags[_MLFLOW_GIT_COMMIT] = code.commit

        run = self._client.create_run(self._experiment_id(name), tags=run_tags, run_name=f"train-{name}")
        run_id = run.info.run_id
        try:
            self._log_values(run_id, params, metrics)
            local_root = _local_path(run.info.artifact_uri)
            if local_root is not None:
                # What MLflow's local artifact repository would do, minus a copy of what can
                # be gigabytes of embeddings.
                artifacts.save_model(model, local_root / _MODEL_DIR)
            else:
                with tempfile.TemporaryDirectory(prefix="marketpilot-model-") as scratch:
                    model_dir = Path(scratch) / _MODEL_DIR
                    artifacts.save_model(model, model_dir)
                    self._client.log_artifacts(run_id, str(model_dir), _MODEL_DIR)
            for path in extra_files:
                self._client.log_artifact(run_id, str(path), "extra")
        except BaseException:
            self._client.set_terminated(run_id, status="FAILED")
            raise
        self._client.set_terminated(run_id, status="FINISHED")

        self._ensure_registered_model(name)
        created = self._client.create_model_version(
            name,
            source=f"{run.info.artifact_uri.rstrip('/')}/{_MODEL_DIR}",
            run_id=run_id,
            tags={**user_tags, **lineage},
            description=description,
            await_creation_for=0,  # SQL stores create versions synchronously; never poll
        )
        return self.get(name, int(created.version))

    # -- reading ---------------------------------------------------------------------

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of `name`, newest first."""
        registered = self._registered(name)
        found = self._search_versions(name)
        runs = self._runs_of(found)
        return sorted(
            (self._record(mv, registered, runs.get(mv.run_id or "")) for mv in found),
            key=lambda v: v.version,
            reverse=True,
        )

    def get(self, name: str, ref: int | str = CHAMPION) -> ModelVersion:
        """Version `ref` of `name`: a version number (int or digits) or an alias."""
        registered = self._registered(name)
        number = self._resolve(registered, ref)
        mv = self._mlflow_version(name, number)
        run = self._run(mv.run_id)
        return self._record(mv, registered, run)

    def history(self, name: str) -> list[PromotionEvent]:
        """Promotions and rollbacks of `name`, oldest first."""
        return decode_history(self._registered(name).tags.get(_TAG_PROMOTIONS))

    def list_models(self) -> list[RegisteredModelSummary]:
        """One summary per registered model, by name."""
        numbers_by_name: dict[str, list[int]] = {}
        for mv in self._search_versions(None):  # one query for all models, not one per model
            numbers_by_name.setdefault(mv.name, []).append(int(mv.version))
        summaries = []
        for registered in self._all_registered():
            numbers = numbers_by_name.get(registered.name, [])
            aliases = {alias: int(v) for alias, v in registered.aliases.items()}
            summaries.append(
                RegisteredModelSummary(
                    name=registered.name,
                    versions=len(numbers),
                    latest_version=max(numbers, default=None),
                    champion=aliases.get(CHAMPION),
                    challenger=aliases.get(CHALLENGER),
                    updated_at=_from_millis(registered.last_updated_timestamp),
                )
            )
        return sorted(summaries, key=lambda s: s.name)

    def show(self, name: str) -> ModelDetails:
        """Versions (with metrics, fingerprint, code version), aliases and promotion history."""
        registered = self._registered(name)
        return ModelDetails(
            name=name,
            description=registered.description or None,
            versions=tuple(self.versions(name)),
            aliases={alias: int(v) for alias, v in sorted(registered.aliases.items())},
            promotions=tuple(decode_history(registered.tags.get(_TAG_PROMOTIONS))),
        )

    # -- aliases, promotion, rollback ------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point `alias` at `version`. Setting `champion` is a promotion (history kept)."""
        if alias == CHAMPION:
            self.promote(name, version)
            return
        _check_alias(alias)
        self._mlflow_version(name, version)
        self._client.set_registered_model_alias(name, alias, str(version))

    def remove_alias(self, name: str, alias: str) -> None:
        """Drop `alias` (e.g. end a challenger's trial). The champion is changed by
        `promote` and `rollback` only, so there is always something to serve."""
        if alias == CHAMPION:
            raise ValueError("the champion alias cannot be removed; promote another version or roll back")
        registered = self._registered(name)
        if alias not in registered.aliases:
            raise ModelNotFound(f"model {name!r} has no {alias!r} alias")
        self._client.delete_registered_model_alias(name, alias)

    def promote(self, name: str, version: int) -> PromotionEvent:
        """Make `version` the champion and record the champion it replaces.

        A challenger that is promoted stops being the challenger (its trial is over).
        Promoting the current champion again is recorded but changes nothing else.
        """
        registered = self._registered(name)
        self._mlflow_version(name, version)
        previous = _alias_version(registered, CHAMPION)
        self._client.set_registered_model_alias(name, CHAMPION, str(version))
        if _alias_version(registered, CHALLENGER) == version:
            self._client.delete_registered_model_alias(name, CHALLENGER)
        return self._record_event(registered, new_event("promote", version, previous))

    def rollback(self, name: str) -> PromotionEvent:
        """Restore the champion that the current one replaced (repeatable, as a stack)."""
        registered = self._registered(name)
        current = _alias_version(registered, CHAMPION)
        if current is None:
            raise NoPreviousChampion(f"model {name!r} has no champion to roll back")
        events = decode_history(registered.tags.get(_TAG_PROMOTIONS))
        target = rollback_target(events, current, lambda v: self._version_exists(name, v))
        if target is None:
            raise NoPreviousChampion(
                f"model {name!r} has no previous champion to roll back to (champion is version {current})"
            )
        self._client.set_registered_model_alias(name, CHAMPION, str(target))
        return self._record_event(registered, new_event("rollback", target, current))

    # -- loading ---------------------------------------------------------------------

    def load(self, name: str, ref: int | str = CHAMPION) -> object:
        """The model object of version `ref` (default: the champion)."""
        return self.load_version(name, ref).model

    def load_version(self, name: str, ref: int | str = CHAMPION) -> LoadedModel:
        """The model object together with the version record it came from."""
        version = self.get(name, ref)
        return LoadedModel(version=version, model=artifacts.load_model(self.model_dir(version)))

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> ModelVersion:
        """Tag an existing version (e.g. the retraining run that registered it). Lineage tags
        are the registry's own and cannot be overwritten."""
        for key in tags:
            if key.startswith(_RESERVED_TAG_PREFIXES):
                raise ValueError(f"tag {key!r} uses a reserved prefix ({', '.join(_RESERVED_TAG_PREFIXES)})")
        self._mlflow_version(name, version)  # ModelNotFound for an unknown name or version
        for key, value in tags.items():
            self._client.set_model_version_tag(name, str(version), key, str(value))
        return self.get(name, version)

    def extra_file(self, version: ModelVersion, filename: str) -> Path | None:
        """A file logged with `version`'s training run under `extra/` (see
        :meth:`log_training_run`), as a local path; None when the run has no such file."""
        if "/" in filename or filename in ("", ".", ".."):
            raise ValueError(f"extra file name must be a plain file name, got {filename!r}")
        model_dir = _local_path(version.source)
        if model_dir is not None:
            path = model_dir.parent / "extra" / filename
            return path if path.is_file() else None
        if version.run_id is None:
            return None
        target = self._cache_root() / version.name / f"{version.version}-extra" / filename
        if not target.is_file():
            from mlflow.artifacts import download_artifacts
            from mlflow.exceptions import MlflowException

            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
            try:
                downloaded = download_artifacts(
                    run_id=version.run_id, artifact_path=f"extra/{filename}", dst_path=str(staging),
                    tracking_uri=self.location.tracking_uri,
                )
                Path(downloaded).rename(target)
            except (MlflowException, OSError):
                return None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def model_dir(self, version: ModelVersion) -> Path:
        """A local directory holding the files of `version`.

        Files in a local artifact root are read in place; remote ones (object store, MLflow
        server) are downloaded once into the cache directory. Versions are immutable, so a
        cached copy never goes stale.
        """
        local = _local_path(version.source)
        if local is not None:
            return local
        target = self._cache_root() / version.name / str(version.version)
        if not target.is_dir():
            from mlflow.artifacts import download_artifacts

            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
            try:
                downloaded = download_artifacts(
                    artifact_uri=version.source, dst_path=str(staging), tracking_uri=self.location.tracking_uri
                )
                Path(downloaded).rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    # -- MLflow plumbing -------------------------------------------------------------

    def _experiment_id(self, name: str) -> str:
        """The MLflow experiment holding `name`'s training runs, created on first use with its
        artifact location under the configured root (MLflow's default would be `./mlruns`)."""
        experiment_name = f"marketpilot/{name}"
        existing = self._client.get_experiment_by_name(experiment_name)
        if existing is None:
            location = f"{self.location.artifact_root.rstrip('/')}/{name}"
            with _tolerate(_MLFLOW_EXISTS):
                return self._client.create_experiment(experiment_name, artifact_location=location)
            existing = self._client.get_experiment_by_name(experiment_name)  # created concurrently
            if existing is None:
                raise RegistryError(f"experiment {experiment_name!r} vanished while being created")
        return str(existing.experiment_id)

    def _ensure_registered_model(self, name: str) -> None:
        with _tolerate(_MLFLOW_EXISTS):
            self._client.create_registered_model(name)

    def _log_values(self, run_id: str, params: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric, Param

        now = int(datetime.now(UTC).timestamp() * 1000)
        self._client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
            params=[Param(key, str(value)) for key, value in params.items()],
            synchronous=True,
        )

    def _registered(self, name: str) -> RegisteredModel:
        _check_name(name)
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == _MLFLOW_NOT_FOUND:
                raise ModelNotFound(f"no registered model named {name!r}") from None
            raise

    def _all_registered(self) -> Iterator[RegisteredModel]:
        token: str | None = None
        while True:
            page = self._client.search_registered_models(max_results=1000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def _search_versions(self, name: str | None) -> list[MlflowModelVersion]:
        """Versions of model `name` (already validated, so safe to quote), or of all models."""
        query = None if name is None else f"name = '{name}'"
        found: list[MlflowModelVersion] = []
        token: str | None = None
        while True:
            page = self._client.search_model_versions(query, max_results=10_000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def _resolve(self, registered: RegisteredModel, ref: int | str) -> int:
        if isinstance(ref, bool):
            raise TypeError("a version reference is an int or a string, not a bool")
        if isinstance(ref, int):
            return ref
        if ref.isdigit():
            return int(ref)
        number = _alias_version(registered, ref)
        if number is None:
            known = ", ".join(sorted(registered.aliases)) or "none"
            raise ModelNotFound(f"model {registered.name!r} has no {ref!r} alias (aliases: {known})")
        return number

    def _mlflow_version(self, name: str, version: int) -> MlflowModelVersion:
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code != _MLFLOW_NOT_FOUND:
                raise
        self._registered(name)  # raises if the model itself is unknown
        known = ", ".join(str(n) for n in sorted(int(mv.version) for mv in self._search_versions(name)))
        raise ModelNotFound(f"model {name!r} has no version {version} (versions: {known or 'none'})")

    def _version_exists(self, name: str, version: int) -> bool:
        try:
            self._mlflow_version(name, version)
        except ModelNotFound:
            return False
        return True

    def _run(self, run_id: str | None) -> Run | None:
        if not run_id:
            return None
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == _MLFLOW_NOT_FOUND:
                return None
            raise

    def _runs_of(self, versions: Iterable[MlflowModelVersion]) -> dict[str, Run]:
        """The runs behind `versions`, fetched in one query per experiment."""
        run_ids = sorted({mv.run_id for mv in versions if mv.run_id})
        if not run_ids:
            return {}
        runs: dict[str, Run] = {}
        first = self._run(run_ids[0])
        if first is not None:
            runs[first.info.run_id] = first
            quoted = ", ".join(f"'{run_id}'" for run_id in run_ids if run_id.isalnum())
            for run in self._client.search_runs(
                [first.info.experiment_id], filter_string=f"attributes.run_id IN ({quoted})", max_results=len(run_ids)
            ):
                runs[run.info.run_id] = run
        for run_id in run_ids:  # runs logged elsewhere (registered by hand) are fetched one by one
            if run_id not in runs and (fetched := self._run(run_id)) is not None:
                runs[run_id] = fetched
        return runs

    def _record(self, mv: MlflowModelVersion, registered: RegisteredModel, run: Run | None) -> ModelVersion:
        tags: dict[str, str] = dict(mv.tags or {})
        number = int(mv.version)
        dirty = tags.get(_TAG_DIRTY, "")
        return ModelVersion(
            name=mv.name,
            version=number,
            flavor=tags.get(_TAG_FLAVOR, "unknown"),
            run_id=mv.run_id or "",
            source=mv.source or "",
            data_fingerprint=tags.get(_TAG_FINGERPRINT, ""),
            code=CodeVersion(
                commit=tags.get(_TAG_COMMIT) or None,
                dirty=None if dirty == "" else dirty == "true",
                package_version=tags.get(_TAG_PACKAGE, "unknown"),
            ),
            params=dict(run.data.params) if run is not None else {},
            metrics=dict(run.data.metrics) if run is not None else {},
            tags={k: v for k, v in tags.items() if not k.startswith(_RESERVED_TAG_PREFIXES)},
            aliases=tuple(sorted(a for a, v in registered.aliases.items() if int(v) == number)),
            created_at=_from_millis(mv.creation_timestamp),
            description=mv.description or None,
        )

    def _record_event(self, registered: RegisteredModel, event: PromotionEvent) -> PromotionEvent:
        # Read-modify-write of one tag: promotions are rare operator actions, and two at
        # the same instant on the same model would race on the alias anyway.
        events = decode_history(registered.tags.get(_TAG_PROMOTIONS))
        events.append(event)
        self._client.set_registered_model_tag(registered.name, _TAG_PROMOTIONS, encode_history(events))
        return event

    def _cache_root(self) -> Path:
        if self._cache_dir is not None:
            return self._cache_dir
        if self._own_cache is None:
            self._own_cache = tempfile.TemporaryDirectory(prefix="marketpilot-model-cache-")
        return Path(self._own_cache.name)


# -- the functions behind `marketpilot models list|show|promote|rollback` ------------------


def open_registry(settings: Settings | None = None) -> ModelRegistry:
    """The registry of the configured profile (see :mod:`marketpilot.platform.models.store`)."""
    return ModelRegistry.from_settings(settings if settings is not None else get_settings())


def list_models(settings: Settings | None = None) -> list[RegisteredModelSummary]:
    with open_registry(settings) as registry:
        return registry.list_models()


def show(name: str, settings: Settings | None = None) -> ModelDetails:
    with open_registry(settings) as registry:
        return registry.show(name)


def promote(name: str, version: int, settings: Settings | None = None) -> PromotionEvent:
    with open_registry(settings) as registry:
        return registry.promote(name, version)


def rollback(name: str, settings: Settings | None = None) -> PromotionEvent:
    with open_registry(settings) as registry:
        return registry.rollback(name)


# -- helpers -------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"model name {name!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (it appears in paths and URLs)"
        )


def _check_alias(alias: str) -> None:
    if not _ALIAS.fullmatch(alias) or re.fullmatch(r"v\d+", alias) or alias == "latest":
        raise ValueError(
            f"alias {alias!r} must be lowercase letters, digits, '_' or '-', start with a letter, "
            "and not look like a version ('v3', 'latest')"
        )


def _local_path(uri: str) -> Path | None:
    """The local path of a `file://` (or scheme-less) URI, None for remote storage."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(url2pathname(unquote(parsed.path)))
    return None


def _alias_version(registered: RegisteredModel, alias: str) -> int | None:
    value = registered.aliases.get(alias)
    return None if value is None else int(value)


def _from_millis(millis: int | None) -> datetime:
    return datetime.fromtimestamp((millis or 0) / 1000, tz=UTC)


@contextmanager
def _tolerate(error_code: str) -> Iterator[None]:
    """Swallow an MlflowException with `error_code` (e.g. a concurrent create)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code != error_code:
            raise
