"""`marketpilot demo`: a small simulated marketplace, loaded, its models trained, ready to query.

Each step is idempotent, so running the demo twice reuses the data, the database and the
registered models instead of failing, duplicating rows or retraining.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress, TaskID

from marketpilot.dataimport.importer import import_file
from marketpilot.dataimport.schemas import SCHEMAS
from marketpilot.platform.auth import create_key
from marketpilot.runtime import Runtime
from marketpilot.simulate import SimulationConfig, simulate

IMPORT_ORDER = tuple(SCHEMAS)  # dependency order: sellers before listings before orders
DEMO_MODELS = ("recommend", "fraud", "click")
# A small marketplace makes few payments; a higher fraud share leaves the fraud model enough
# positives in its fit part and in its validation window.
DEMO_FRAUD_RATE = 0.1


@dataclass(frozen=True)
class DemoResult:
    data_dir: Path
    summary: dict[str, int]
    operator_key: str
    merchant_key: str
    merchant_seller: str
    models: dict[str, str]  # model -> "champion vN" or why it is not there


def prepare_demo(runtime: Runtime, *, listings: int, users: int, days: int, progress: Progress) -> DemoResult:
    config = SimulationConfig(listings=listings, users=users, days=days, seed=7, fraud_rate=DEMO_FRAUD_RATE)
    data_dir = runtime.settings.home / f"demo-data-{listings}-{users}-{days}-fraud{DEMO_FRAUD_RATE}"
    if not (data_dir / "manifest.json").exists():
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"simulate {stage}", total=total)
            progress.update(tasks[stage], completed=done, total=total)

        simulate(config, out=data_dir, progress=report)

    summary: dict[str, int] = {}
    for kind in IMPORT_ORDER:
        path = data_dir / f"{kind}.csv"
        if not path.exists():
            continue
        task = progress.add_task(f"import {kind}", total=None)

        def imported(done: int, total: int | None, task: TaskID = task) -> None:
            progress.update(task, completed=done, total=total)

        report_ = import_file(runtime.db, kind, path, source=runtime.source, progress=imported)
        summary[kind] = report_.rows
        progress.update(task, completed=report_.rows, total=report_.rows)

    models = train_models(runtime, progress)
    merchant_seller = _first_seller(data_dir / "sellers.csv")
    _, operator_key = create_key(runtime.db, "operator", name="demo operator")
    _, merchant_key = create_key(runtime.db, "merchant", seller_id=merchant_seller, name="demo merchant")
    (runtime.settings.home / "demo.json").write_text(
        json.dumps({"data_dir": str(data_dir), "summary": summary, "merchant_seller": merchant_seller}, indent=2)
    )
    return DemoResult(data_dir, summary, operator_key, merchant_key, merchant_seller, models)


def train_models(runtime: Runtime, progress: Progress) -> dict[str, str]:
    """Train and promote each demo model that has no champion yet (durable runs, as
    `marketpilot train NAME` does); returns what each model ended as."""
    from marketpilot.platform.models.registry import ModelNotFound, ModelRegistry
    from marketpilot.platform.models.retraining import run_retraining

    found: dict[str, str] = {}
    task = progress.add_task("train models", total=len(DEMO_MODELS))
    with ModelRegistry.from_settings(runtime.settings) as registry:
        for name in DEMO_MODELS:
            progress.update(task, description=f"train {name}")
            try:
                found[name] = f"champion v{registry.get(name).version}"
            except ModelNotFound:
                decision = run_retraining(runtime, name, cause=f"demo-{name}")
                found[name] = (f"champion v{decision.challenger_version}" if decision.outcome == "promoted"
                               else f"{decision.outcome}: {decision.reason}")
            progress.advance(task)
    return found


def _first_seller(path: Path) -> str:
    with path.open() as fh:
        fh.readline()
        return fh.readline().split(",", 1)[0].strip('"')
