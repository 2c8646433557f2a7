"""The validation split on which the recommender's settings are chosen: never the test part.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_recommend_validation [--seed 7]
        [--config '{"timeline_window": 0}'] [--als 0.05,2 --als 40,4]

Protocol: MovieLens-100K's ms-recommenders split (`marketpilot evaluate recommend`); of its
*training* part, per user a random 25% of the pairs (`validation_split`, seed `--seed`; 7 and
8 in docs/recommendations.md) is held out and the rest is what every system is fitted on.
Prints one JSON object with NDCG@10 on the held-out quarter (binary relevance, fitted pairs
never recommended) of:

- ``ease``: EASE (l2 500), the anchor every choice is compared with;
- ``marketpilot``: the package's `fit_pipeline` with `PipelineConfig` defaults, or with the
  `--config` overrides (JSON object of `PipelineConfig` fields), nested decision and cold slot
  included; ``marketpilot_no_cold_slot`` the same lists with the cold slot off;
  ``marketpilot_ranker_no_cold_slot`` / ``marketpilot_stage1_no_cold_slot`` the two orderings
  the nested decision chooses between (the ranker; the stage-1 blend or first retriever),
  each served; the pipeline's own nested validation figures beside them;
- with ``--als L2,ALPHA`` (repeatable) ALS alone at those settings instead of the pipeline
  (``--factors``, default 64), seconds each.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--config", default="{}", help="PipelineConfig overrides, a JSON object")
    parser.add_argument("--als", action="append", default=[], help="L2,ALPHA: score ALS alone instead")
    parser.add_argument("--factors", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(run(args.seed, json.loads(args.config), args.als, args.factors)))


def run(seed: int, overrides: dict[str, object], als_settings: list[str], factors: int) -> dict[str, object]:
    import numpy as np

    from marketpilot.recommend.catalog_data import fit_pipeline
    from marketpilot.recommend.evaluation.command import load_dataset
    from marketpilot.recommend.evaluation.metrics import ranking_metrics, top_k
    from marketpilot.recommend.evaluation.splits import split, validation_split
    from marketpilot.recommend.interactions import Interactions
    from marketpilot.recommend.pipeline import PipelineConfig
    from marketpilot.recommend.retrievers.als import ALS
    from marketpilot.recommend.retrievers.base import Batch
    from marketpilot.recommend.retrievers.ease import EASE

    started = time.perf_counter()
    frame, listings, users_frame = load_dataset("movielens-100k")
    data = Interactions.from_frame(frame)
    train_rows, _ = split(data, "ms-recommenders")
    train = data.take(train_rows)
    fit_rows, held_rows = validation_split(train, 0.25, seed)
    fit, held = train.take(fit_rows), train.take(held_rows)
    relevant = held.matrix(binary=True)
    seen = fit.matrix(binary=True)
    users = np.arange(data.catalog.n_users)
    batch = Batch(users, fit.matrix(), fit.histories())

    def ndcg(top: np.ndarray) -> float:
        return round(ranking_metrics(top, relevant, 10).ndcg, 4)

    out: dict[str, object] = {"seed": seed, "ease": ndcg(top_k(EASE().fit(fit).score(batch), 10, seen))}
    if als_settings:
        for setting in als_settings:
            l2, alpha = (float(v) for v in setting.split(","))
            als = ALS(factors=factors, regularization=l2, alpha=alpha).fit(fit)
            out[f"als l2={l2:g} alpha={alpha:g} factors={factors}"] = ndcg(top_k(als.score(batch), 10, seen))
    else:
        config = PipelineConfig.from_json(PipelineConfig().to_json() | overrides)
        pipeline = fit_pipeline(fit, listings, users_frame, config)
        out["config_overrides"] = overrides
        out["marketpilot"] = ndcg(pipeline.recommend_batch(users, batch.history, batch.recent, 10))
        pipeline.cold_slots = 0
        out["marketpilot_no_cold_slot"] = ndcg(pipeline.recommend_batch(users, batch.history, batch.recent, 10))
        out["uses_ranker"] = pipeline.uses_ranker
        # both orderings the nested decision chose between, scored on this split (no cold slot)
        chosen = pipeline.uses_ranker
        for name, use in (("ranker", True), ("stage1", False)):
            if use and pipeline.ranker is None:
                continue
            pipeline.uses_ranker = use
            out[f"marketpilot_{name}_no_cold_slot"] = ndcg(pipeline.recommend_batch(users, batch.history, batch.recent, 10))
        pipeline.uses_ranker = chosen
        out["nested_validation"] = {k: round(v, 4) for k, v in pipeline.validation.items()}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    main()
