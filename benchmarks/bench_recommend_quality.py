"""Recommendation quality against the simulator's ground truth: the two-stage pipeline vs ALS alone.

    .venv/bin/python -m benchmarks.bench_recommend_quality [--listings 3000] [--users 2000] [--days 21] [--seed 0]

Simulates a marketplace, fits both systems on ALL its interactions (views, clicks, carts,
purchases, weighted by type; the same weighted matrix for both) and scores their top-10 lists
against what the generator knows and the data does not say. Prints one JSON object:

- ``ndcg@10``: per user with interactions, the relevant set is their 20 listings of highest
  true utility (`simulate.behaviour.utility`: taste . factors, quality, price vs reference)
  among the listings they have not interacted with; mean NDCG@10 of each system's list.
- ``cold_start_hit_rate``: share of the simulator's cold-start listings (created in the last
  days, never shown, so with no interactions) that appear in the top-10 list of at least one
  user whose 20 truly best listings include them. ALS cannot score an item nobody touched;
  the pipeline reaches them through content embeddings and seller history.
- ``als`` is ALS alone with the pipeline's own settings (`PipelineConfig.als_*`: l2 40,
  confidence 4, chosen on MovieLens' validation split), ``als_default`` ALS alone with
  `implicit`'s usual light regularisation (`ALS()`: l2 0.05, confidence 2), which does better
  here; ``ratio_ndcg_marketpilot_vs_best_als`` is against the better of the two.
- ``random`` is the anchor: the expected NDCG@10 of a uniformly random list.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

RELEVANT = 20
K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=3000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(run(args.listings, args.users, args.days, args.seed)))


def run(listings: int, users: int, days: int, seed: int) -> dict[str, object]:
    from benchmarks.sim_world import load

    from marketpilot.recommend.catalog_data import fit_pipeline
    from marketpilot.recommend.evaluation.metrics import ranking_metrics, top_k
    from marketpilot.recommend.pipeline import PipelineConfig, als_retriever
    from marketpilot.recommend.retrievers.als import ALS
    from marketpilot.recommend.retrievers.base import Batch

    world = load(listings, users, days, seed)
    frame, listing_frame, user_frame = world.frame, world.listings, world.users
    catalog, data, sim_s = world.catalog, world.data, world.simulate_s
    cold = world.cold

    seen = data.matrix(binary=True)
    active = np.flatnonzero(np.diff(seen.indptr) > 0)
    history = data.matrix()[active]
    recent = data.histories()
    batch = Batch(active, history, [recent[u] for u in active])

    # true utility of every listing for every active user, and the relevant set
    n_items = catalog.n_items
    util = np.empty((len(active), n_items))
    for row, u in enumerate(active):
        util[row] = world.utility(int(u))
    util_masked = util.copy()
    util_masked[seen[active].nonzero()] = -np.inf
    best = top_k(util_masked.astype(np.float32), RELEVANT)
    relevant = _as_matrix(best, n_items)

    t0 = time.perf_counter()
    als = als_retriever(PipelineConfig()).fit(data)  # the pipeline's own ALS settings
    als_fit = time.perf_counter() - t0
    tops = {"als": top_k(als.score(batch), K, seen[active]),
            "als_default": top_k(ALS().fit(data).score(batch), K, seen[active])}
    t0 = time.perf_counter()
    pipeline = fit_pipeline(data, listing_frame, user_frame)
    pipe_fit = time.perf_counter() - t0
    tops["marketpilot"] = pipeline.recommend_batch(active, history, batch.recent, K)

    results: dict[str, dict[str, float]] = {}
    for name, top in tops.items():
        m = ranking_metrics(top, relevant, K)
        results[name] = {"ndcg@10": m.ndcg, "precision@10": m.precision, "coverage": m.coverage,
                         "cold_start_hit_rate": _cold_hit_rate(top, best, cold),
                         "cold_start_share_of_slots": float(np.isin(top, np.flatnonzero(cold)).mean())}
    rng = np.random.default_rng(seed)
    random_top = np.stack([rng.choice(n_items, K, replace=False) for _ in range(len(active))])
    results["random"] = {"ndcg@10": ranking_metrics(random_top, relevant, K).ndcg}
    return {
        "simulation": {"listings": listings, "users": users, "days": days, "seed": seed,
                       "interactions": len(frame), "active_users": int(len(active)),
                       "cold_start_listings": int(cold.sum()), "simulate_s": round(sim_s, 1)},
        "fit_s": {"als": round(als_fit, 1), "marketpilot": round(pipe_fit, 1)},
        "pipeline": {"uses_ranker": pipeline.uses_ranker, "validation": pipeline.validation},
        "results": results,
        "ratio_ndcg_marketpilot_vs_best_als": results["marketpilot"]["ndcg@10"]
        / max(results["als"]["ndcg@10"], results["als_default"]["ndcg@10"], 1e-12),
    }


def _as_matrix(top: np.ndarray, n_items: int):  # noqa: ANN202 (scipy sparse)
    import scipy.sparse as sp

    rows, cols = np.nonzero(top >= 0)
    return sp.csr_matrix((np.ones(len(rows)), (rows, top[rows, cols])), shape=(top.shape[0], n_items))


def _cold_hit_rate(top: np.ndarray, best: np.ndarray, cold: np.ndarray) -> float:
    """Share of cold listings that reach, in someone's top K, a user who truly ranks them top."""
    wanted = {int(i) for i in np.flatnonzero(cold)}
    if not wanted:
        return float("nan")
    hit: set[int] = set()
    for row in range(top.shape[0]):
        shown = set(top[row].tolist()) & wanted
        if shown:
            hit |= shown & set(best[row].tolist())
    reachable = wanted & {int(i) for i in best.ravel() if i >= 0}
    return len(hit) / max(len(reachable), 1)


if __name__ == "__main__":
    main()
