import os
import stat
import subprocess
import sys
from pathlib import Path

from marketpilot.datasets import install_debian

APT_GET = """#!/bin/sh
echo "$@" >> "$STATE/calls"
case "$1" in
  update) touch "$STATE/updated"; exit 0 ;;
  download)
    if [ -f "$STATE/updated" ] || [ -n "$LISTS_PRESENT" ]; then
      : > r-cran-bayesm_3.1-5+dfsg-1_amd64.deb; exit 0
    fi
    echo "E: Unable to locate package r-cran-bayesm" >&2; exit 100 ;;
esac
exit 1
"""
DPKG = """#!/bin/sh
echo "dpkg $@" >> "$STATE/calls"
mkdir -p "$3/usr/lib/R/site-library/bayesm/data" && echo rda > "$3/usr/lib/R/site-library/bayesm/data/orangeJuice.rda"
"""
FAILING_APT_GET = """#!/bin/sh
echo "E: Could not open lock file" >&2; exit 100
"""


def _fake_tools(tmp_path: Path, monkeypatch, apt_get: str) -> Path:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("apt-get", apt_get), ("dpkg", DPKG)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STATE", str(state))
    return state


def test_install_debian_updates_lists_once_when_download_fails_then_unpacks(tmp_path, monkeypatch):
    state = _fake_tools(tmp_path, monkeypatch, APT_GET)
    root = tmp_path / "datasets"
    rda = install_debian.install(root, log=lambda _: None)
    assert rda == root / "bayesm" / install_debian.RDA_RELATIVE_PATH
    assert rda.read_text() == "rda\n"
    calls = (state / "calls").read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["download", "update", "download", "dpkg"]
    assert [p.name for p in root.iterdir()] == ["bayesm"]  # no staging leftovers


def test_install_debian_is_idempotent(tmp_path, monkeypatch):
    state = _fake_tools(tmp_path, monkeypatch, APT_GET)
    monkeypatch.setenv("LISTS_PRESENT", "1")
    root = tmp_path / "datasets"
    install_debian.install(root, log=lambda _: None)
    messages: list[str] = []
    install_debian.install(root, log=messages.append)
    assert "already present" in messages[0]
    assert [c.split()[0] for c in (state / "calls").read_text().splitlines()] == ["download", "dpkg"]


def test_install_debian_honours_the_datasets_dir_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETPILOT_DATASETS_DIR", str(tmp_path / "elsewhere"))
    assert install_debian.rda_path() == tmp_path / "elsewhere" / "bayesm" / install_debian.RDA_RELATIVE_PATH


def test_install_debian_exits_non_zero_with_a_message_on_failure(tmp_path, monkeypatch):
    _fake_tools(tmp_path, monkeypatch, FAILING_APT_GET)
    env = dict(os.environ, MARKETPILOT_DATASETS_DIR=str(tmp_path / "datasets"))
    result = subprocess.run([sys.executable, "-m", "marketpilot.datasets.install_debian"],
                            env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "could not install r-cran-bayesm" in result.stderr
    assert "apt-get update" in result.stderr
    assert not (tmp_path / "datasets" / "bayesm").exists()


def test_install_debian_main_accepts_a_directory(tmp_path, monkeypatch):
    _fake_tools(tmp_path, monkeypatch, APT_GET)
    monkeypatch.setenv("LISTS_PRESENT", "1")
    assert install_debian.main(["--dir", str(tmp_path / "d")]) == 0
    assert install_debian.rda_path(tmp_path / "d").is_file()
