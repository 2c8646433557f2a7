"""Unpack Debian's ``r-cran-bayesm`` (Dominick's orange juice) into the datasets cache.

Run as ``python -m marketpilot.datasets.install_debian``. Idempotent: does nothing when
``orangeJuice.rda`` is already there. Otherwise ``apt-get download r-cran-bayesm`` in a
temporary directory (after one ``apt-get update`` if the package lists are missing) and
``dpkg -x`` into ``$MARKETPILOT_DATASETS_DIR/bayesm`` (default
``~/.cache/marketpilot/datasets/bayesm``). Needs no root: ``apt-get download`` and
``dpkg -x`` do not touch the system. Exits non-zero with a clear message on failure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from marketpilot.datasets._package import datasets_cache_dir

__all__ = ["DEBIAN_PACKAGE", "RDA_RELATIVE_PATH", "InstallError", "bayesm_dir", "install", "main", "rda_path"]

DEBIAN_PACKAGE = "r-cran-bayesm"
RDA_RELATIVE_PATH = Path("usr/lib/R/site-library/bayesm/data/orangeJuice.rda")


class InstallError(RuntimeError):
    pass


def bayesm_dir(root: Path | None = None) -> Path:
    """Where the Debian package is unpacked: ``<datasets cache>/bayesm``."""
    return (root if root is not None else datasets_cache_dir()) / "bayesm"


def rda_path(root: Path | None = None) -> Path:
    return bayesm_dir(root) / RDA_RELATIVE_PATH


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise InstallError(f"`{cmd[0]}` not found: this needs a Debian/Ubuntu system with apt and dpkg") from exc


def _download(workdir: Path, log: Callable[[str], object]) -> Path:
    cmd = ["apt-get", "download", DEBIAN_PACKAGE]
    result = _run(cmd, workdir)
    if result.returncode != 0:
        log(f"`{' '.join(cmd)}` failed ({result.stderr.strip() or result.stdout.strip()}); "
            "running `apt-get update` once and retrying")
        update = _run(["apt-get", "update"], workdir)
        if update.returncode != 0:
            raise InstallError(
                f"`apt-get update` failed (exit {update.returncode}): "
                f"{update.stderr.strip()[-2000:]}\n(it may need root: `sudo apt-get update`, then re-run)")
        result = _run(cmd, workdir)
        if result.returncode != 0:
            raise InstallError(
                f"`{' '.join(cmd)}` failed (exit {result.returncode}) after `apt-get update`: "
                f"{result.stderr.strip()[-2000:]}")
    debs = sorted(workdir.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if not debs:
        raise InstallError(f"`{' '.join(cmd)}` succeeded but no {DEBIAN_PACKAGE}_*.deb appeared in {workdir}")
    return debs[-1]


def install(root: Path | None = None, *, log: Callable[[str], object] = print) -> Path:
    """Make sure ``orangeJuice.rda`` is in the cache; return its path."""
    target = bayesm_dir(root)
    rda = target / RDA_RELATIVE_PATH
    if rda.is_file():
        log(f"{DEBIAN_PACKAGE}: already present at {rda}")
        return rda
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="marketpilot-deb-") as tmp:
        workdir = Path(tmp)
        deb = _download(workdir, log)
        # Unpack beside the target and rename, so an interrupted run never leaves half a tree.
        staging = Path(tempfile.mkdtemp(prefix=".bayesm-", dir=target.parent))
        try:
            result = _run(["dpkg", "-x", str(deb), str(staging)], workdir)
            if result.returncode != 0:
                raise InstallError(f"`dpkg -x {deb.name}` failed (exit {result.returncode}): "
                                   f"{result.stderr.strip()[-2000:]}")
            if not (staging / RDA_RELATIVE_PATH).is_file():
                raise InstallError(f"{deb.name} does not contain {RDA_RELATIVE_PATH}")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    log(f"{DEBIAN_PACKAGE}: unpacked {deb.name} into {target}")
    return rda


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m marketpilot.datasets.install_debian",
        description="Unpack Debian's r-cran-bayesm (Dominick's orange juice) into the datasets cache.")
    parser.add_argument("--dir", type=Path, default=None,
                        help="datasets root (default $MARKETPILOT_DATASETS_DIR or ~/.cache/marketpilot/datasets)")
    args = parser.parse_args(argv)
    try:
        install(args.dir)
    except (InstallError, OSError) as exc:
        print(f"error: could not install {DEBIAN_PACKAGE}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
