"""Same config, same bytes: every file, ground truth included."""

from __future__ import annotations

from pathlib import Path

from marketpilot.simulate import SimulationConfig, simulate

TINY = SimulationConfig(listings=400, users=300, days=4, seed=3, sales_listings=50, machines=2)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    simulate(TINY, out=tmp_path / "a")
    simulate(TINY, out=tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(a) == set(b)
    assert "interactions.csv" in a and "ground_truth/impressions.parquet" in a
    different = [name for name in a if a[name] != b[name]]
    assert different == []


def test_another_seed_gives_another_marketplace(tmp_path: Path) -> None:
    simulate(TINY, out=tmp_path / "a")
    other = SimulationConfig(**{**TINY.__dict__, "seed": 4})
    simulate(other, out=tmp_path / "b")
    for name in ("listings.csv", "interactions.csv", "ground_truth/item_factors.npy"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes(), name


def test_rerunning_into_the_same_directory_replaces_the_output(tmp_path: Path) -> None:
    first = simulate(TINY, out=tmp_path)
    before = _files(tmp_path)
    second = simulate(TINY, out=tmp_path)
    assert _files(tmp_path) == before
    assert first.counts == second.counts
