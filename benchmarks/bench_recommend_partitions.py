"""How much the MovieLens-100K figure depends on which 75/25 partition the protocol draws.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_recommend_partitions \
        [--partition ours|notebook|release|floor ...] [--seed N ...] [--out DIR]
        [--ease-l2 L2 ...]

`marketpilot evaluate recommend --protocol ms-recommenders` draws its own per-user 75/25
partition with seed 42 (`evaluation/splits.py`): Microsoft Recommenders' rule, not their
random numbers, so not their partition. This harness runs the same evaluation (every system
fitted on the training part, the pipeline tuning itself on validation splits of it; nothing
here tunes anything) on partitions drawn the way Microsoft Recommenders' own
`python_stratified_split(data, ratio=0.75, seed=42)` draws them, over the rows in file order
(`u.data`'s order, which RecBole's `ml-100k.inter` keeps). Written from the algorithms, not
their code; there have been three:

- ``notebook``: each user's rows shuffled by pandas ``DataFrame.sample(frac=1,
  random_state=42)`` (the same seed for every user) and the first round(0.75 n) kept for
  training. This reproduces the train part their published SAR quick-start notebook prints
  (74,992 ratings over 1,649 items), the era of the figures the issue quotes.
- ``release``: the splitter of the current PyPI release (recommenders 1.2.1): one uniform
  number per row from NumPy's legacy generator seeded 42, rows ordered by (user, number),
  and a row is training when its 1-based rank within the user is at most round(0.75 n).
- ``floor``: the same order, a row training when rank / n <= 0.75 (another version of their
  splitter: floor instead of round, so fewer training rows).
- ``ours``: the command's own partition.
- ``seed-N`` (``--seed N``, repeatable): our rule with seed N instead of 42, to see how far the
  protocol's figure moves with the draw alone. With ``--seed`` the four above run only when
  named with ``--partition``. The last line is then a summary over the seeded partitions: mean
  and standard error of each system's NDCG@10 and of the pipeline's lead over EASE.

Python's, pandas' and NumPy's round() all round halves to even, so the three agree.

``--ease-l2 L2`` (repeatable) scores EASE alone at each l2 on each partition instead of the
whole evaluation: the anchor check. The issue quotes a plain EASE at about 0.489 on this
protocol; this prints what EASE gives here at any l2, reading the test part for the baseline
only (nothing of the pipeline is chosen from it). One JSON line per partition, then the mean
over partitions of each l2 and of each partition's best.

Prints one JSON object per partition: NDCG@10 of every system, the pipeline's ratio to
EASE, train rows and items, which ordering the pipeline serves and the nested validation
figures it decided on. With ``--out DIR`` each partition's files go to ``DIR/<partition>/``
as `evaluate --out` writes them, with `result.json` (the evaluation's JSON), for
`/work/shared/checks/ranking_metrics.py DIR/<partition> DIR/<partition>/result.json`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from marketpilot.recommend.evaluation.metrics import standard_error
from marketpilot.recommend.evaluation.splits import random_split, split
from marketpilot.recommend.interactions import Interactions

PARTITIONS = ("ours", "notebook", "release", "floor")
RATIO = 0.75
SEED = 42


def partition(kind: str, data: Interactions) -> np.ndarray:
    """Training-row mask of `kind` over the rows of `data` (file order)."""
    if kind == "ours":
        return split(data, "ms-recommenders")[0]
    if kind.startswith("seed-"):
        return random_split(data, RATIO, int(kind.removeprefix("seed-")))[0]
    users = data.users
    n = len(users)
    train = np.zeros(n, bool)
    if kind == "notebook":
        rows = pd.DataFrame({"user": users})
        for _, group in rows.groupby("user", sort=False):
            shuffled = group.sample(frac=1, random_state=SEED)
            train[shuffled.index[: round(RATIO * len(shuffled))]] = True
        return train
    if kind not in ("release", "floor"):
        raise ValueError(f"unknown partition {kind!r}; known: {', '.join(PARTITIONS)}")
    draws = np.random.RandomState(SEED).rand(n)
    order = np.lexsort((draws, users))
    sorted_users = users[order]
    rank = np.arange(n) - np.searchsorted(sorted_users, sorted_users, side="left") + 1
    count = np.bincount(users)[sorted_users]
    keep = rank <= np.round(RATIO * count) if kind == "release" else rank / count <= RATIO
    train[order[keep]] = True
    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", action="append", choices=PARTITIONS, help="default: all four")
    parser.add_argument("--seed", action="append", type=int, default=[], help="our rule, another seed")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--ease-l2", action="append", type=float, default=[],
                        help="score EASE alone at this l2 on each partition (repeatable); no pipeline")
    args = parser.parse_args()
    kinds = list(args.partition or ([] if args.seed else PARTITIONS)) + [f"seed-{n}" for n in args.seed]
    if args.ease_l2:
        ease_anchor(kinds, args.ease_l2)
        return

    from marketpilot.recommend.evaluation.command import evaluate, load_dataset

    frame, listings, users_frame = load_dataset("movielens-100k")
    frame = frame.reset_index(drop=True)
    data = Interactions.from_frame(frame)  # one row per frame row: it builds its own catalogue
    seeded: list[dict[str, float]] = []
    for kind in kinds:
        started = time.perf_counter()
        train = partition(kind, data)
        out = args.out / kind if args.out else None
        result = evaluate(frame, data, train, ~train, 10, out, listings, users_frame)
        if out is not None:  # what `evaluate --json` prints, for the check script's comparison
            (out / "result.json").write_text(json.dumps(result))
        ndcg = {name: round(m["ndcg@10"], 4) for name, m in result["results"].items()}  # type: ignore[attr-defined]
        if kind.startswith("seed-"):
            seeded.append(ndcg)
        print(json.dumps({
            "partition": kind, "train_rows": int(train.sum()), "train_items": int(len(np.unique(data.items[train]))),
            "ndcg@10": ndcg, "marketpilot_over_ease": round(ndcg["marketpilot"] / ndcg["ease"], 4),
            "uses_ranker": result["pipeline"]["uses_ranker"],  # type: ignore[index]
            "nested_validation": {k: round(v, 4) for k, v in result["pipeline"]["validation"].items()},  # type: ignore[index]
            "seconds": round(time.perf_counter() - started, 1),
        }), flush=True)
    if len(seeded) > 1:
        print(json.dumps(summary(seeded)), flush=True)


def ease_anchor(kinds: list[str], l2s: list[float]) -> None:
    """EASE alone at each l2 on each partition: NDCG@10 on its test part, seen items removed,
    the evaluation's own metric code; then the means over partitions."""
    from marketpilot.recommend.evaluation.command import load_dataset
    from marketpilot.recommend.evaluation.metrics import ranking_metrics, top_k
    from marketpilot.recommend.retrievers.base import Batch
    from marketpilot.recommend.retrievers.ease import EASE

    frame = load_dataset("movielens-100k")[0].reset_index(drop=True)
    data = Interactions.from_frame(frame)
    users = np.arange(data.catalog.n_users)
    rows: list[list[float]] = []
    for kind in kinds:
        train_rows = partition(kind, data)
        train, test = data.take(train_rows), data.take(~train_rows)
        batch = Batch(users, train.matrix(), train.histories())
        seen, relevant = train.matrix(binary=True), test.matrix(binary=True)
        row = [ranking_metrics(top_k(EASE(l2).fit(train).score(batch), 10, seen), relevant, 10).ndcg for l2 in l2s]
        rows.append(row)
        best = int(np.argmax(row))
        print(json.dumps({"partition": kind, "ease_ndcg@10": {f"{l2:g}": round(v, 4) for l2, v in zip(l2s, row, strict=True)},
                          "best_l2": l2s[best], "best": round(row[best], 4)}), flush=True)
    if len(rows) > 1:
        grid = np.asarray(rows)
        print(json.dumps({"partitions": len(rows),
                          "mean_ease_ndcg@10": {f"{l2:g}": round(float(v), 4) for l2, v in zip(l2s, grid.mean(axis=0), strict=True)},
                          "mean_of_each_partition_best": round(float(grid.max(axis=1).mean()), 4),
                          "highest": round(float(grid.max()), 4)}), flush=True)


def summary(runs: list[dict[str, float]]) -> dict[str, object]:
    """Mean and standard error (over partitions) of each system's NDCG@10 and of the
    pipeline's lead over EASE."""
    def stats(values: list[float]) -> dict[str, float]:
        v = np.asarray(values)
        return {"mean": round(float(v.mean()), 4), "se": round(standard_error(v), 4),
                "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}
    out: dict[str, object] = {"partitions": len(runs)}
    out |= {name: stats([r[name] for r in runs]) for name in runs[0]}
    out["marketpilot_minus_ease"] = stats([r["marketpilot"] - r["ease"] for r in runs])
    return out


if __name__ == "__main__":
    main()
