"""manifest.json: what a simulation directory holds, and proof of what produced it.

The manifest is written last and atomically, so its presence means the directory is
complete (the demo relies on this to reuse earlier output). It records the config and seed,
the window, row counts, a SHA-256 of every file (two runs with the same config must agree
byte for byte), the import schema version and a fingerprint of the schema columns - so a
consumer can tell if the schema changed since the data was generated.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import marketpilot
from marketpilot.dataimport.schemas import SCHEMAS
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.output import sha256_file

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def schema_fingerprint() -> str:
    spec = {kind: [[c.name, str(c.type), c.required, list(c.choices or ())] for c in schema.columns]
            for kind, schema in SCHEMAS.items()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_manifest(out: Path, config: SimulationConfig, rows: dict[str, int],
                   truth_rows: dict[str, int]) -> Path:
    files: dict[str, Any] = {}
    for name, count in sorted(rows.items()):
        files[name] = {"rows": count, "sha256": sha256_file(out / name)}
    truth: dict[str, Any] = {}
    for path in sorted((out / "ground_truth").iterdir()):
        entry: dict[str, Any] = {"sha256": sha256_file(path)}
        if path.name in truth_rows:
            entry["rows"] = truth_rows[path.name]
        truth[path.name] = entry
    manifest = {
        "generator": "marketpilot.simulate",
        "generator_version": marketpilot.__version__,
        "schema_version": SCHEMA_VERSION,
        "schema_fingerprint": schema_fingerprint(),
        "seed": config.seed,
        "config": config.to_json(),
        "window": {"start": _iso(config.start_epoch), "end": _iso(config.end_epoch)},
        "files": files,
        "ground_truth": truth,
    }
    path = out / MANIFEST
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
