"""`marketpilot evaluate holdout`: geo-holdout difference-in-differences, on the simulator (coverage
of the true uplift over seeded runs) or on a real region × day GMV panel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def _simulated(uplift: float, runs: int, listings: int, users: int, days: int, post_start: int, seed: int,
               sim_dir: Path | None) -> dict[str, object]:
    import tempfile

    import numpy as np

    from marketpilot.measure.holdout.simulation import run_holdout
    from marketpilot.measure.simulated_sessions import simulate_sessions

    out = sim_dir or Path(tempfile.mkdtemp(prefix="marketpilot-holdout-"))
    sessions = simulate_sessions(out, listings=listings, users=users, days=days, seed=seed)
    try:
        results = [run_holdout(sessions, uplift=uplift, post_start=post_start, seed=seed * 100_003 + r)
                   for r in range(runs)]
    except ValueError as exc:  # a region without sales in a period: the simulation is too small
        raise typer.BadParameter(f"{exc}; simulate more users or days") from None
    did = [r.did for r in results]
    truth = np.array([r.true_incremental_gmv for r in results])
    est = np.array([d.incremental_gmv for d in did])
    return {
        "dataset": f"simulator(listings={listings}, users={users}, days={days}, seed={seed}, regions={len(sessions.regions)})",
        "protocol": (f"{runs} seeded runs: matched-pair region assignment, region-day sessions re-drawn with "
                     f"replacement, treated sessions' GMV × {1 + uplift:g} from day {post_start}; 95% intervals"),
        "true_relative_uplift": uplift,
        "results": {
            "marketpilot": {
                "coverage": float(np.mean([r.covers for r in results])),
                "median_relative_interval_width": float(np.median([d.relative_high - d.relative_low for d in did])),
                "mean_relative_uplift": float(np.mean([d.relative_uplift for d in did])),
                "mean_abs_incremental_error": float(np.mean(np.abs(est - truth))),
                "mean_true_incremental_gmv": float(truth.mean()),
            },
            "post_only": {
                "coverage": float(np.mean([r.post_only_covers for r in results])),
                "median_relative_interval_width": float(np.median([r.post_only_width for r in results])),
            },
        },
    }


def _panel(path: Path, treated: str, start: str) -> dict[str, object]:
    import numpy as np
    import pandas as pd

    from marketpilot.measure.holdout.did import did_estimate

    frame = pd.read_csv(path)
    missing = {"region", "date", "gmv"} - set(frame.columns)
    if missing:
        raise typer.BadParameter(f"{path} lacks columns {sorted(missing)}", param_hint="--panel")
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    wide = frame.pivot_table(index="region", columns="date", values="gmv", aggfunc="sum", fill_value=0.0)
    treated_set = {t.strip() for t in treated.split(",") if t.strip()}
    unknown = treated_set - set(wide.index)
    if unknown:
        raise typer.BadParameter(f"unknown regions {sorted(unknown)}", param_hint="--treated")
    start_date = pd.Timestamp(start).date()
    post_start = int(np.searchsorted(np.array(wide.columns), start_date))
    try:
        est = did_estimate(wide.to_numpy(), np.array([r in treated_set for r in wide.index]), post_start)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return {"dataset": str(path), "protocol": f"difference-in-differences of log mean daily GMV, start {start}, "
            "Welch t 95% interval over regions", "results": {"marketpilot": est.__dict__}}


def command(
    uplift: Annotated[float, typer.Option(help="Simulator: true relative GMV uplift in treated regions.")] = 0.05,
    runs: Annotated[int, typer.Option(min=1, help="Simulator: seeded runs.")] = 200,
    listings: Annotated[int, typer.Option(min=100)] = 2_000,
    users: Annotated[int, typer.Option(min=100)] = 20_000,
    days: Annotated[int, typer.Option(min=4)] = 28,
    post_start: Annotated[int, typer.Option(help="Simulator: first treated day (0-based).")] = 14,
    seed: Annotated[int, typer.Option()] = 0,
    sim_dir: Annotated[Path | None, typer.Option(help="Simulator output to reuse (written if missing).")] = None,
    panel: Annotated[Path | None, typer.Option(help="Real data instead: CSV with region, date, gmv.")] = None,
    treated: Annotated[str, typer.Option(help="With --panel: comma-separated treated regions.")] = "",
    start: Annotated[str, typer.Option(help="With --panel: first date of the change (ISO).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Difference-in-differences estimate of incremental GMV from a geographic holdout, with a 95% interval."""
    if panel is not None:
        if not treated or not start:
            raise typer.BadParameter("--panel needs --treated and --start")
        payload = _panel(panel, treated, start)
    else:
        if not 0 < post_start < days:
            raise typer.BadParameter(f"post-start must lie in (0, {days})", param_hint="--post-start")
        if uplift <= -1:
            raise typer.BadParameter("uplift must exceed -1", param_hint="--uplift")
        payload = _simulated(uplift, runs, listings, users, days, post_start, seed, sim_dir)
    typer.echo(json.dumps(payload) if as_json else json.dumps(payload, indent=2))
