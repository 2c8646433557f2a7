"""`marketpilot evaluate ope`: off-policy estimators against a known on-policy value."""

from __future__ import annotations

import json
from typing import Annotated

import typer

DATASETS = ("obd",)


def command(
    dataset: Annotated[str, typer.Option(help="Logged bandit data: obd (Open Bandit Dataset sample).")] = "obd",
    campaign: Annotated[str, typer.Option(help="OBD campaign: all, men or women.")] = "all",
    reward_model: Annotated[str, typer.Option(help="Reward model for DM/DR: logistic or lightgbm.")] = "logistic",
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples per interval.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the BTS simulation, folds and bootstrap.")] = 12345,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Estimate Bernoulli TS's value from the Random policy's OBD logs with DM, IPS, SNIPS, DR, SNDR and Switch-DR."""
    from marketpilot.datasets import DatasetNotInstalled
    from marketpilot.datasets.obd import CAMPAIGNS
    from marketpilot.measure.ope.obd_protocol import run_obd

    if dataset not in DATASETS:
        raise typer.BadParameter(f"dataset must be one of {DATASETS}, got {dataset!r}", param_hint="--dataset")
    if campaign not in CAMPAIGNS:
        raise typer.BadParameter(f"campaign must be one of {CAMPAIGNS}, got {campaign!r}", param_hint="--campaign")
    if reward_model not in ("logistic", "lightgbm"):
        raise typer.BadParameter("reward model must be logistic or lightgbm", param_hint="--reward-model")
    try:
        report = run_obd(campaign, reward_model=reward_model, n_bootstrap=n_bootstrap, seed=seed)  # type: ignore[arg-type]
    except DatasetNotInstalled as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    payload = report.to_json()
    if as_json:
        typer.echo(json.dumps(payload))
        return
    typer.echo(f"{payload['dataset']}: on-policy value {report.on_policy_value:.5f}")
    for name, r in report.results.items():
        typer.echo(f"  {name:<10} {r.estimate:.5f}  [{r.ci_low:.5f}, {r.ci_high:.5f}]  relative error {r.relative_error:.3f}")
