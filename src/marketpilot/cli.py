"""The `marketpilot` command line: a thin adapter over the services.

Imports of heavy modules happen inside commands so `marketpilot --help` stays instant.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from marketpilot.dataimport.schemas import SCHEMAS
from marketpilot.fraud import evaluate_command as fraud_evaluate
from marketpilot.measure import evaluate_holdout, evaluate_ope
from marketpilot.recommend.evaluation import command as recommend_evaluate
from marketpilot.workflows.sandbox import command as sandbox_command

if TYPE_CHECKING:
    from marketpilot.runtime import Runtime

app = typer.Typer(no_args_is_help=True, add_completion=False, help="marketpilot: the AI and automation layer of a marketplace.")
data_app = typer.Typer(no_args_is_help=True, help="Import data into the marketplace.")
keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")
app.add_typer(data_app, name="data")
app.add_typer(keys_app, name="keys")
models_app = typer.Typer(no_args_is_help=True, help="Registered models: versions, champion and challenger.")
app.add_typer(models_app, name="models")
outbox_app = typer.Typer(no_args_is_help=True, help="The transactional outbox (the event log).")
app.add_typer(outbox_app, name="outbox")
evaluate_app = typer.Typer(
    no_args_is_help=True,
    help="Measure a capability against baselines on real or simulated data; prints JSON.",
)
app.add_typer(evaluate_app, name="evaluate")
# Each capability registers its `evaluate` command below (one module per command, light imports
# at module level, heavy ones inside the command).
evaluate_app.command("ope")(evaluate_ope.command)
evaluate_app.command("holdout")(evaluate_holdout.command)
app.command("sandbox")(sandbox_command.command)  # loopback payment + carrier providers for the order workflow
evaluate_app.command("fraud")(fraud_evaluate.command)
evaluate_app.command("recommend")(recommend_evaluate.command)

console = Console(stderr=True)

IMPORT_ORDER = tuple(SCHEMAS)  # dependency order: sellers before listings before orders


def _runtime() -> Runtime:
    from marketpilot.platform.config import ConfigError, get_settings
    from marketpilot.runtime import Runtime

    try:
        return Runtime(get_settings())
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int, typer.Option(help="Event delivery in this process (embedded profile).")] = 1,
) -> None:
    """Serve the HTTP API (and, on the embedded profile, deliver events in-process)."""
    runtime = _runtime()
    _serve(runtime, host or runtime.settings.host, port or runtime.settings.port, in_process_events=workers > 0)


def _serve(runtime: Runtime, host: str, port: int, *, in_process_events: bool) -> None:
    from marketpilot.api.app import create_app
    from marketpilot.api.server import run

    stop = threading.Event()
    thread = None
    retraining = None
    if in_process_events and not runtime.settings.is_distributed:
        from marketpilot.platform.config import ConfigError
        from marketpilot.platform.events.worker import run_worker
        from marketpilot.platform.models.retraining_triggers import RetrainSettings, install_retraining

        try:
            # This process is the embedded profile's worker too: retrain on schedule and on
            # drift, for the models MARKETPILOT_RETRAIN_MODELS names (DBOS only if any).
            retrain_settings = RetrainSettings.load()
            if retrain_settings.model_names:
                retraining = install_retraining(runtime, retrain_settings)
        except ConfigError as exc:
            console.print(f"[red]configuration error:[/red] {exc}")
            raise typer.Exit(2) from None
        thread = threading.Thread(
            target=run_worker, args=(runtime, stop), kwargs={"handle_signals": False},
            name="event-dispatcher", daemon=True,
        )
        thread.start()
    try:
        with console.status("loading models and serving state (the first request should not pay for it)"):
            runtime.recommendations.warm()
            runtime.fraud.warm()
        run(create_app(runtime), host=host, port=port, log_level=runtime.settings.log_level)
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
        if retraining is not None:
            retraining.close()


@app.command()
def worker() -> None:
    """Run event delivery, durable workflows (orders, onboarding, disputes) and automated retraining until SIGTERM/SIGINT."""
    from marketpilot.platform.config import ConfigError
    from marketpilot.platform.events.worker import run_worker
    from marketpilot.platform.models.retraining_triggers import RetrainSettings, install_retraining
    from marketpilot.workflows.engine import install as install_workflows
    from marketpilot.workflows.fraud_service_check import ServiceFraudCheck

    runtime = _runtime()
    try:
        # Workflows join DBOS first; install_retraining launches it (one DBOS per process), which
        # resumes interrupted runs of both. Both subscribe on runtime.event_bus before run_worker.
        workflows = install_workflows(runtime, fraud=ServiceFraudCheck(runtime.fraud))
        retraining = install_retraining(runtime, RetrainSettings.load())
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    models = ", ".join(retraining.settings.model_names) or "none"
    console.print(f"worker started ({runtime.settings.profile} profile; retraining: {models}); stop with Ctrl-C or SIGTERM")
    try:
        run_worker(runtime)
    finally:
        retraining.close()
        workflows.close()


@app.command()
def train(
    capability: Annotated[str, typer.Argument(help="Model to retrain, e.g. click.")],
    promote_margin: Annotated[
        float | None, typer.Option(min=0.0, help="How much the challenger must beat the champion by (default: the trainer's).")
    ] = None,
    promote: Annotated[bool, typer.Option("--promote/--no-promote", help="Promote a winning challenger.")] = True,
    holdout: Annotated[float, typer.Option(min=0.01, max=0.99, help="Latest share of rows, by time, for scoring.")] = 0.2,
    run_id: Annotated[str | None, typer.Option(help="Name the run; the same name again returns its decision.")] = None,
) -> None:
    """Retrain a model once, durably; promote it only if it beats the champion. Prints the decision as JSON."""
    from marketpilot.platform.models.errors import RegistryError
    from marketpilot.platform.models.retraining import RetrainPolicy, run_retraining
    from marketpilot.platform.models.training import UnknownTrainer

    runtime = _runtime()
    policy = RetrainPolicy(margin=promote_margin, holdout_fraction=holdout, promote=promote)
    try:
        with console.status(f"retraining {capability}: load, train, evaluate, register, decide"):
            decision = run_retraining(runtime, capability, policy=policy, cause=run_id)
    except UnknownTrainer as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{capability}: {decision.outcome} ({decision.reason})")
    typer.echo(json.dumps(decision.to_dict(), indent=2))


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    listings: Annotated[int, typer.Option(min=1)] = 10_000,
    users: Annotated[int, typer.Option(min=1)] = 5_000,
    days: Annotated[int, typer.Option(min=1)] = 30,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Write a seeded synthetic marketplace in the import schema, with its ground truth."""
    from marketpilot.simulate import SimulationConfig
    from marketpilot.simulate import simulate as run_simulation

    try:
        config = SimulationConfig(listings=listings, users=users, days=days, seed=seed)
    except ValueError as exc:
        console.print(f"[red]invalid simulation:[/red] {exc}")
        raise typer.Exit(2) from None
    with _progress() as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = run_simulation(config, out=out, progress=report)
    console.print(f"wrote {out}: {summary}")


@data_app.command("import")
def data_import(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(IMPORT_ORDER)}.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import a CSV or Parquet file of one entity kind: all rows or none."""
    from marketpilot.dataimport.importer import ImportFailed, import_file

    if kind not in IMPORT_ORDER:
        console.print(f"[red]unknown kind {kind!r}[/red]; expected one of {', '.join(IMPORT_ORDER)}")
        raise typer.Exit(2)
    runtime = _runtime()
    with _progress() as bar:
        task = bar.add_task(f"import {kind}", total=None)
        try:
            report = import_file(
                runtime.db, kind, file, source=runtime.source,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ImportFailed as exc:
            console.print(f"[red]import failed, nothing was written:[/red]\n{exc}")
            raise typer.Exit(1) from None
    console.print(str(report))


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="operator, merchant or service.")],
    seller_id: Annotated[str | None, typer.Option(help="Seller a merchant key is bound to.")] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
) -> None:
    """Create an API key; the plaintext is printed once and stored only as a hash."""
    from marketpilot.platform.auth import create_key

    runtime = _runtime()
    try:
        key_id, plaintext = create_key(runtime.db, role, seller_id=seller_id, name=name)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created key {key_id} ({role}{' for seller ' + seller_id if seller_id else ''})")
    typer.echo(plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, roles, sellers; never the secrets)."""
    from marketpilot.platform.auth import list_keys

    for key in list_keys(_runtime().db):
        typer.echo(key.model_dump_json())


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    from marketpilot.domain.errors import NotFound
    from marketpilot.platform.auth import revoke_key

    try:
        revoke_key(_runtime().db, key_id)
    except NotFound as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    console.print(f"revoked {key_id}")


def _registry_call(fn: object, *args: object) -> object:
    from marketpilot.platform.models.errors import RegistryError

    try:
        return fn(*args)  # type: ignore[operator]
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _as_json(record: object) -> str:
    import dataclasses

    return json.dumps(dataclasses.asdict(record), default=str, indent=2)  # type: ignore[call-overload]


@models_app.command("list")
def models_list() -> None:
    """One line per registered model: versions, champion, challenger."""
    from marketpilot.platform.models import list_models

    _runtime()
    for summary in _registry_call(list_models):  # type: ignore[attr-defined]
        typer.echo(
            f"{summary.name}\tversions={summary.versions}\tchampion={summary.champion}\t"
            f"challenger={summary.challenger}\tupdated={summary.updated_at:%Y-%m-%d %H:%M}"
        )


@models_app.command("show")
def models_show(name: str) -> None:
    """Versions of a model with metrics, data fingerprint, code version and aliases (JSON)."""
    from marketpilot.platform.models import show

    _runtime()
    typer.echo(_as_json(_registry_call(show, name)))


@models_app.command("promote")
def models_promote(name: str, version: int) -> None:
    """Make VERSION the champion (the previous champion is remembered for rollback)."""
    from marketpilot.platform.models import promote

    _runtime()
    event = _registry_call(promote, name, version)
    console.print(f"{name}: champion is now version {event.version} (was {event.previous})")  # type: ignore[attr-defined]


@models_app.command("rollback")
def models_rollback(name: str) -> None:
    """Restore the previous champion."""
    from marketpilot.platform.models import rollback

    _runtime()
    event = _registry_call(rollback, name)
    console.print(f"{name}: rolled back to version {event.version} (from {event.previous})")  # type: ignore[attr-defined]


@outbox_app.command("purge")
def outbox_purge(
    older_than_days: Annotated[float | None, typer.Option(
        help="Retention window in days (default: the outbox_retention_days setting).", min=0.001)] = None,
    ledger_older_than_days: Annotated[float | None, typer.Option(
        help="Idempotency-ledger window in days (default: the processed_events_retention_days setting).",
        min=0.001)] = None,
    dry_run: Annotated[bool, typer.Option(help="Say how many rows would go; delete nothing.")] = False,
) -> None:
    """Delete outbox events older than the retention window that every reader is done with,
    then idempotency-ledger rows older than theirs whose event has left the outbox (the event
    worker also does this every outbox_purge_interval_seconds)."""
    from datetime import timedelta

    from marketpilot.platform.events.retention import purge_ledger, purge_outbox

    runtime = _runtime()
    days = older_than_days if older_than_days is not None else runtime.settings.outbox_retention_days
    ledger_days = (ledger_older_than_days if ledger_older_than_days is not None
                   else runtime.settings.processed_events_retention_days)
    with _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def reporter(what: str) -> Callable[[int, int], None]:
            def report(done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = progress.add_task(f"deleting {what}", total=total)
                progress.update(tasks[what], completed=done)
            return report

        result = purge_outbox(runtime.db, older_than=timedelta(days=days), published_only=runtime.settings.is_distributed,
                              dry_run=dry_run, progress=reporter("outbox events"))
        ledger = purge_ledger(runtime.db, older_than=timedelta(days=ledger_days), dry_run=dry_run,
                              progress=reporter("ledger rows"))
    if dry_run:
        console.print(f"{result.eligible} events would be deleted (older than {result.cutoff:%Y-%m-%d %H:%M} UTC, "
                      f"positions up to {result.up_to_position}; held back by {result.held_back_by})")
        console.print(f"{ledger.eligible} ledger rows would be deleted (older than {ledger.cutoff:%Y-%m-%d %H:%M} UTC, "
                      "event no longer in the outbox)")
        return
    console.print(f"{result.deleted} events deleted (older than {result.cutoff:%Y-%m-%d %H:%M} UTC; "
                  f"held back by {result.held_back_by})")
    console.print(f"{ledger.deleted} ledger rows deleted (older than {ledger.cutoff:%Y-%m-%d %H:%M} UTC)")


@app.command()
def demo(
    listings: Annotated[int, typer.Option(min=100)] = 3_000,
    users: Annotated[int, typer.Option(min=50)] = 1_500,
    days: Annotated[int, typer.Option(min=1)] = 21,
    port: Annotated[int | None, typer.Option()] = None,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API when ready.")] = True,
) -> None:
    """Simulate a small marketplace, load it, train its models (recommend, fraud, click) and serve the API."""
    from marketpilot.demo import prepare_demo

    runtime = _runtime()
    if runtime.settings.is_distributed:
        console.print("[red]the demo runs on the embedded profile; unset MARKETPILOT_PROFILE[/red]")
        raise typer.Exit(2)
    with _progress() as bar:
        result = prepare_demo(runtime, listings=listings, users=users, days=days, progress=bar)
    port = port or runtime.settings.port
    base = f"http://{runtime.settings.host}:{port}"
    console.rule("marketpilot demo")
    console.print(f"data:        {result.data_dir}")
    console.print(f"loaded:      {result.summary}")
    console.print(f"models:      {result.models}")
    console.print(f"API docs:    {base}/docs")
    console.print(f"metrics:     {base}/metrics")
    console.print(f"operator key (shown once): [bold]{result.operator_key}[/bold]")
    console.print(f"merchant key for seller {result.merchant_seller}: [bold]{result.merchant_key}[/bold]")
    console.print(f'try:  curl -H "Authorization: Bearer {result.operator_key}" {base}/v1/listings?limit=3')
    sys.stderr.flush()
    if serve_api:
        _serve(runtime, runtime.settings.host, port, in_process_events=True)


if __name__ == "__main__":
    app()
