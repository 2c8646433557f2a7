"""`marketpilot demo`: a small simulated marketplace, loaded and ready to query.

Each step is idempotent, so running the demo twice reuses the data and the database
instead of failing or duplicating rows.
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


@dataclass(frozen=True)
class DemoResult:
    data_dir: Path
    summary: dict[str, int]
    operator_key: str
    merchant_key: str
    merchant_seller: str


def prepare_demo(runtime: Runtime, *, listings: int, users: int, days: int, progress: Progress) -> DemoResult:
    config = SimulationConfig(listings=listings, users=users, days=days, seed=7)
    data_dir = runtime.settings.home / f"demo-data-{listings}-{users}-{days}"
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

    merchant_seller = _first_seller(data_dir / "sellers.csv")
    _, operator_key = create_key(runtime.db, "operator", name="demo operator")
    _, merchant_key = create_key(runtime.db, "merchant", seller_id=merchant_seller, name="demo merchant")
    (runtime.settings.home / "demo.json").write_text(
        json.dumps({"data_dir": str(data_dir), "summary": summary, "merchant_seller": merchant_seller}, indent=2)
    )
    return DemoResult(data_dir, summary, operator_key, merchant_key, merchant_seller)


def _first_seller(path: Path) -> str:
    with path.open() as fh:
        fh.readline()
        return fh.readline().split(",", 1)[0].strip('"')
