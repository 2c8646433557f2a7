"""The public entry point: summary, progress reporting, and an incomplete run never looking complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketpilot.simulate import SimulationConfig, SimulationSummary, simulate

TINY = SimulationConfig(listings=300, users=200, days=2, seed=5, sales_listings=20, machines=1)


def test_progress_reports_every_stage_up_to_its_total(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    summary = simulate(TINY, out=tmp_path, progress=lambda stage, done, total: calls.append((stage, done, total)))
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["world", "listings", "users", "days", "sales", "sensors", "manifest"]
    for stage in stages:
        seen = [(done, total) for s, done, total in calls if s == stage]
        assert all(0 <= done <= total for done, total in seen)
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)
        assert seen[-1][0] == seen[-1][1]
    assert isinstance(summary, SimulationSummary)
    assert summary.counts["listings"] == 300 and summary.files["orders"] == tmp_path / "orders.csv"
    assert "300 listings" in str(summary)
    assert (summary.ground_truth / "README.md").read_text().startswith("# Ground truth")


def test_a_failed_run_leaves_no_manifest(tmp_path: Path) -> None:
    simulate(TINY, out=tmp_path)
    assert (tmp_path / "manifest.json").exists()

    def explode(stage: str, done: int, total: int) -> None:
        if stage == "days":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        simulate(TINY, out=tmp_path, progress=explode)
    assert not (tmp_path / "manifest.json").exists()
