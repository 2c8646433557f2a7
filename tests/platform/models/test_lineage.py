"""The code version recorded with a training run."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from marketpilot.platform.models.lineage import code_version


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def _checkout(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "model.py").write_text("ALPHA = 1\n")
    (tmp_path / "notes.txt").write_text("scratch\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    return package


def test_a_clean_checkout_records_its_commit_and_not_dirty(tmp_path: Path) -> None:
    package = _checkout(tmp_path)
    code = code_version(package)
    assert code.commit == _git(tmp_path, "rev-parse", "HEAD")
    assert code.dirty is False
    assert code.package_version == metadata.version("marketpilot")


def test_a_modified_or_new_file_in_the_package_makes_it_dirty(tmp_path: Path) -> None:
    package = _checkout(tmp_path)
    (package / "model.py").write_text("ALPHA = 2\n")
    assert code_version(package).dirty is True

    _git(tmp_path, "checkout", "--", ".")
    (package / "new_feature.py").write_text("BETA = 1\n")
    assert code_version(package).dirty is True


def test_changes_outside_the_package_do_not_make_it_dirty(tmp_path: Path) -> None:
    package = _checkout(tmp_path)
    (tmp_path / "notes.txt").write_text("more scratch\n")
    (tmp_path / "untracked.ipynb").write_text("{}")
    assert code_version(package).dirty is False


def test_outside_a_git_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    code = code_version(tmp_path)
    assert (code.commit, code.dirty) == (None, None)
    assert code.package_version == metadata.version("marketpilot")
