"""`marketpilot evaluate recommend`: our pipeline against most-popular, ALS and EASE on one split.

Prints one JSON object ``{"dataset", "protocol", "k", "users", "results": {system: metrics},
"uncertainty", "pipeline"}``. ``uncertainty`` says how much of a difference is the sample of
users: each system's NDCG@k standard error over users, and the pipeline's lead over each
baseline with the standard error of the per-user difference (paired: the same users). Neither
counts the variation from drawing another split, which moves every system's figure by more
(`benchmarks/bench_recommend_partitions.py`).
With ``--out DIR`` it also writes ``train.csv`` and ``test.csv`` (the split, in the
interactions import schema) and ``recommendations.csv`` (system, user_id, listing_id, rank),
so the metrics can be recomputed without our code. Every system sees only the training part;
the pipeline tunes itself on validation splits carved out of it.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import numpy as np

DATASETS = ("movielens-100k",)


def command(
    dataset: Annotated[str, typer.Option(help="movielens-100k, or a path to an interactions file (CSV/Parquet, import schema).")] = "movielens-100k",
    protocol: Annotated[str, typer.Option(help="ms-recommenders (per-user random 75/25, seed 42) or leave-last-out.")] = "ms-recommenders",
    k: Annotated[int, typer.Option(min=1, max=1000, help="Length of each recommendation list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json/--no-json", help="Print the result as JSON (the only format).")] = True,
    out: Annotated[Path | None, typer.Option(help="Write train.csv, test.csv and recommendations.csv here.")] = None,
) -> None:
    """Evaluate the recommender against baselines on a real data set; prints JSON."""
    from marketpilot.recommend.evaluation.splits import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise typer.BadParameter(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}", param_hint="--protocol")
    try:
        result = run(dataset, protocol, k, out)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    printable = strict_json(result)
    typer.echo(json.dumps(printable, allow_nan=False) if as_json else json.dumps(printable, indent=2, allow_nan=False))


def load_dataset(dataset: str):  # noqa: ANN201 (pandas frames)
    """(interactions, listings or None, users or None) frames in the import schema."""
    import pandas as pd

    if dataset in DATASETS:
        from marketpilot import datasets

        ml = datasets.load(dataset)
        return ml.interactions, ml.listings, ml.users
    path = Path(dataset)
    if not path.exists():
        raise FileNotFoundError(f"no such data set or file: {dataset} (known data sets: {', '.join(DATASETS)})")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"user_id": str, "listing_id": str})
    return frame, None, None


def run(dataset: str, protocol: str, k: int, out: Path | None) -> dict[str, object]:
    from marketpilot.recommend.evaluation.splits import split
    from marketpilot.recommend.interactions import Interactions

    started = time.perf_counter()
    frame, listings, users_frame = load_dataset(dataset)
    data = Interactions.from_frame(frame)
    train_rows, test_rows = split(data, protocol)
    result = evaluate(frame, data, train_rows, test_rows, k, out, listings, users_frame)
    return {"dataset": dataset, "protocol": protocol} | result | {"seconds": round(time.perf_counter() - started, 1)}


def evaluate(frame, data, train_rows, test_rows, k: int, out: Path | None,  # noqa: ANN001 (frames, masks)
             listings=None, users_frame=None) -> dict[str, object]:  # noqa: ANN001
    """Every system fitted on the rows `train_rows` of `data` (interactions built from `frame`,
    row for row) and scored on `test_rows`: ``{"k", "users", "results", "pipeline"}``."""
    import numpy as np

    from marketpilot.recommend.catalog_data import fit_pipeline
    from marketpilot.recommend.evaluation.metrics import ranking_metrics, top_k, user_ndcg
    from marketpilot.recommend.pipeline import PipelineConfig, als_retriever
    from marketpilot.recommend.popularity import Popularity
    from marketpilot.recommend.retrievers.base import Batch
    from marketpilot.recommend.retrievers.ease import EASE

    train, test = data.take(train_rows), data.take(test_rows)
    seen = train.matrix(binary=True)
    relevant = test.matrix(binary=True)
    users = np.arange(data.catalog.n_users)
    history = train.matrix()
    batch = Batch(users, history, train.histories())

    tops: dict[str, np.ndarray] = {}
    pop = Popularity(half_life_days=None).fit(train)
    tops["popular"] = top_k(np.repeat(pop.scores()[None, :], len(users), axis=0), k, seen)
    tops["als"] = top_k(als_retriever(PipelineConfig()).fit(train).score(batch), k, seen)
    tops["ease"] = top_k(EASE().fit(train).score(batch), k, seen)

    pipeline = fit_pipeline(train, listings, users_frame)
    tops["marketpilot"] = pipeline.recommend_batch(users, history, batch.recent, k)

    results = {name: ranking_metrics(top, relevant, k).to_dict() for name, top in tops.items()}
    per_user = {name: user_ndcg(top, relevant, k) for name, top in tops.items()}
    uncertainty = uncertainty_block(per_user, k)
    if out is not None:
        write_files(out, frame, train_rows, test_rows, data, tops)
    return {
        "k": k,
        "users": int(np.count_nonzero(np.diff(relevant.indptr))),
        "results": {name: results[name] for name in ("marketpilot", "popular", "als", "ease")},
        "uncertainty": uncertainty,
        "pipeline": {"uses_ranker": pipeline.uses_ranker, "validation": pipeline.validation},
    }


def uncertainty_block(per_user: dict[str, np.ndarray], k: int) -> dict[str, dict[str, object]]:
    """Each system's NDCG@k standard error over users and the pipeline's paired lead over each
    baseline. A standard error that one user cannot give is NaN here and ``null`` in the
    printed JSON (`strict_json`)."""
    from marketpilot.recommend.evaluation.metrics import paired_lead, standard_error

    leads = {name: paired_lead(per_user["marketpilot"], v) for name, v in per_user.items() if name != "marketpilot"}
    return {
        f"ndcg@{k}_se": {name: round(standard_error(v), 5) for name, v in per_user.items()},
        f"marketpilot_ndcg@{k}_lead": {name: {"lead": round(lead, 5), "se": round(se, 5)}
                                      for name, (lead, se) in leads.items()},
    }


def strict_json(value: object) -> object:
    """`value` with every NaN or infinite float replaced by None: Python's `json` would print
    them as the bare words ``NaN`` / ``Infinity``, which strict JSON parsers reject."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    return value


def write_files(out: Path, frame, train_rows, test_rows, data, tops) -> None:  # noqa: ANN001
    """The split (import schema, rows as given) and every system's lists."""
    import numpy as np
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    # from_frame drops nothing when it builds its own catalogue, so rows align with the frame
    frame = frame.reset_index(drop=True)
    frame[train_rows].to_csv(out / "train.csv", index=False)
    frame[test_rows].to_csv(out / "test.csv", index=False)
    parts = []
    for system, top in tops.items():
        rows, ranks = np.nonzero(top >= 0)
        parts.append(pd.DataFrame({
            "system": system,
            "user_id": data.catalog.user_ids[rows],
            "listing_id": data.catalog.listing_ids[top[rows, ranks]],
            "rank": ranks + 1,
        }))
    pd.concat(parts, ignore_index=True).to_csv(out / "recommendations.csv", index=False)
