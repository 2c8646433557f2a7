"""Which code trained a model: git commit, dirty flag and package version.

Recorded with every training run so a registered version can be traced back to source.
Only the marketpilot package directory is inspected for dirtiness: a scratch notebook
elsewhere in the checkout does not change what the model was trained with, while an
uncommitted or untracked module inside the package does.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from marketpilot.platform.models.records import CodeVersion

_GIT_TIMEOUT_SECONDS = 10


def code_version(source_dir: Path | None = None) -> CodeVersion:
    """The code version of `source_dir` (default: the installed marketpilot package)."""
    directory = source_dir if source_dir is not None else _package_dir()
    commit = _git(directory, "rev-parse", "--verify", "HEAD")
    dirty: bool | None = None
    if commit is not None:
        status = _git(directory, "status", "--porcelain", "--untracked-files=normal", "--", ".")
        dirty = None if status is None else status != ""
    return CodeVersion(commit=commit, dirty=dirty, package_version=package_version())


def package_version() -> str:
    try:
        return metadata.version("marketpilot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _package_dir() -> Path:
    import marketpilot

    return Path(marketpilot.__file__).resolve().parent


def _git(directory: Path, *args: str) -> str | None:
    """Run git in `directory`; None when git is missing or the directory is not a checkout."""
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip()
