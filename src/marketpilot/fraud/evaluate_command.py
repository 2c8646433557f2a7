"""`marketpilot evaluate fraud`: our fraud model against baselines on one time-ordered split.

Light imports only at module level (the CLI imports this to build its help)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def command(
    dataset: Annotated[str, typer.Option(help="ulb-creditcard, simulated, or a PATH (transactions.csv [+ users.csv])")]
    = "ulb-creditcard",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write scores.csv (id, label, score, system) here.")] = None,
) -> None:
    """Fraud scoring vs logreg, isolation_forest and lightgbm_raw (AUC-ROC, AUC-PR, recall at FPR 0.1%)."""
    from rich.console import Console

    from marketpilot.fraud import evaluation_data
    from marketpilot.fraud.evaluate import evaluate, protocol

    console = Console(stderr=True)
    try:
        data = evaluation_data.load(dataset)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"evaluating on {data.name}: {len(data.labels)} rows, {int(data.labels.sum())} frauds")
    run = evaluate(data, out=out, progress=lambda name: console.print(f"fitting {name}"))
    report: dict[str, Any] = {"dataset": data.name, "protocol": protocol(data), "results": run["results"],
                              "model": run["model"]}
    if data.name == "simulated" or "truth" in data.extra:
        from marketpilot.fraud.simulated_metrics import simulated_metrics

        report["simulator"] = simulated_metrics(data, run)
    if out is not None:
        (out / "result.json").write_text(json.dumps(report, indent=2))
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        for system, values in report["results"].items():
            console.print(system, {k: round(v, 4) for k, v in values.items()})
