"""Cold-start exposure: first-week impressions of new listings with the slate policy on vs off.

    .venv/bin/python -m benchmarks.bench_cold_start_exposure [--listings 3000] [--users 2000] \
        [--days 21] [--sessions-per-day 3000] [--seeds 0,1,2] [--exploration thompson] \
        [--cold-share 0.2] [--max-relevance-loss 0.05] [--explore-share 0.05]

Protocol, per seed (the issue's target: cold-start listings' median first-week impressions
≥ +37 % over the ranking without exploration and fairness, at ≤ 2 % loss of simulated GMV):

1. Simulate a marketplace (`simulate`, ground truth kept) and fit the two-stage pipeline on
   all its interactions. The simulator's cold-start listings have none: they were created in
   the last days and never shown.
2. Replay one week of traffic against each arm with the same users, the same order and the
   same random numbers: `--sessions-per-day` sessions a day, each a user drawn uniformly from
   the users with history, asking for a slate of 10. Both arms rank the same `10 + pool`
   candidates from the pipeline (`recommend`), then

   - ``baseline``: the pipeline's top 10 (its own cold-start slot logic included);
   - ``policy``: `recommend.slate_policy.SlatePolicy` as `serve` builds it from the settings
     (`default_policy`): exposure-fair re-ranking toward `--cold-share` of position-weighted
     exposure for listings younger than 7 days, bounded by `--max-relevance-loss` of each
     request's DCG, then budgeted exploration (`--exploration`, at most `--explore-share` of
     slots per session class and day). Thompson sampling learns from the simulated clicks.

3. Buyers answer from the ground truth: a shown listing at position p is clicked with the
   simulator's `click_probability(utility, p)`, carted with `cart_probability`, bought with
   `purchase_probability` at the listed price. GMV is the *expected* value of those draws
   (sum over shown items of P(click) x P(cart) x P(buy) x price), so the two arms' GMV differ
   only by what they showed; clicks for the bandit's updates are sampled with a shared seed.

Reported per arm (medians over seeds): the median and mean first-week impressions of the
cold-start listings, the share of them shown at least once, expected GMV, the explored share
of slots over the week and on its worst day (``budget_never_exceeded``: no simulated day's
explored slots above `--explore-share` of its slots, on any seed); and the ratios
``cold_median_impressions_lift`` (policy / baseline - 1) and ``gmv_change`` (policy /
baseline - 1). When the baseline median is 0 the lift is undefined and reported as null,
with the means beside it. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

K = 10
DAY = 86_400.0
WEEK_DAYS = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=3000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--sessions-per-day", type=int, default=3000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--exploration", default="thompson", choices=["off", "epsilon_greedy", "thompson", "linucb"])
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--cold-share", type=float, default=0.2)
    parser.add_argument("--max-relevance-loss", type=float, default=0.05)
    parser.add_argument("--explore-share", type=float, default=0.05)
    args = parser.parse_args()
    runs = [run_seed(args, int(s)) for s in args.seeds.split(",")]
    print(json.dumps(summarise(args, runs), indent=1))


def summarise(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(path: tuple[str, ...]) -> float | None:
        values = []
        for r in runs:
            v: Any = r
            for key in path:
                v = v[key]
            if v is not None:
                values.append(float(v))
        return round(statistics.median(values), 4) if values else None

    arms = ("baseline", "policy")
    fields = ("cold_median_impressions", "cold_mean_impressions", "cold_shown_share", "expected_gmv",
              "explored_share", "max_daily_explored_share", "cold_share_of_slots")
    return {
        "protocol": "simulator, pipeline fitted on all interactions, one simulated week, same users and "
                    "random numbers per arm; GMV = expected value under the simulator's buyer model",
        "settings": {k: v for k, v in vars(args).items()},
        "per_seed": runs,
        "budget_never_exceeded": all(r["policy"]["budget_never_exceeded"] for r in runs),
        "median_over_seeds": {
            **{arm: {f: med((arm, f)) for f in fields} for arm in arms},
            "cold_median_impressions_lift": med(("cold_median_impressions_lift",)),
            "cold_mean_impressions_lift": med(("cold_mean_impressions_lift",)),
            "gmv_change": med(("gmv_change",)),
        },
    }


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    from benchmarks.sim_world import load

    from marketpilot.recommend.availability import ListingUniverse
    from marketpilot.recommend.catalog_data import fit_pipeline
    from marketpilot.recommend.model import Query
    from marketpilot.recommend.slate_policy import default_policy
    from marketpilot.simulate.behaviour import cart_probability, click_probability, purchase_probability

    t0 = time.perf_counter()
    world = load(args.listings, args.users, args.days, seed)
    catalog, data = world.catalog, world.data
    pipeline = fit_pipeline(data, world.listings, world.users)
    fit_s = time.perf_counter() - t0

    seen = data.matrix(binary=True)
    active = np.flatnonzero(np.diff(seen.indptr) > 0)
    histories = data.histories()
    pool = 20
    start = datetime(2026, 1, 5, tzinfo=UTC).timestamp()

    # the catalogue as the request path sees it: cold listings created at the start of the week
    universe = ListingUniverse()
    n_items = catalog.n_items
    for i in range(n_items):
        universe.add(str(i))
    for i in range(n_items):
        universe.set(i, price=int(world.price_minor[i]), status=0, available=1,
                     created=start if world.cold[i] else start - 60 * DAY)

    # what the service asks the model for (the model is fixed for the week), per user: k
    # items with the policy off, k + pool candidates with it on (`SlatePolicy.candidates_for`)
    candidates: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {"baseline": {}, "policy": {}}
    utilities: dict[str, dict[int, np.ndarray]] = {"baseline": {}, "policy": {}}
    for u in active:
        truth = world.utility(int(u))
        for arm, size in (("baseline", K), ("policy", K + pool)):
            c = pipeline.recommend(Query(k=size, user=int(u), history=histories[u], pool=size - K))
            candidates[arm][int(u)] = (c.items, c.scores)
            utilities[arm][int(u)] = truth[c.items]

    users_rng = np.random.default_rng(seed + 1000)
    sessions = users_rng.choice(active, size=(WEEK_DAYS, args.sessions_per_day))
    out: dict[str, Any] = {"seed": seed, "fit_s": round(fit_s, 1), "cold_listings": int(world.cold.sum()),
                           "active_users": int(len(active))}
    for arm in ("baseline", "policy"):
        now = [start]
        policy = None
        if arm == "policy":
            policy = default_policy(args.exploration, epsilon=args.epsilon, max_explored_share=args.explore_share,
                                    max_gmv_loss_per_day=float("inf"), cold_start_share=args.cold_share,
                                    max_relevance_loss=args.max_relevance_loss)
            assert policy is not None
            policy.seed = seed
            policy.budget.clock = lambda now=now: datetime.fromtimestamp(now[0], UTC)
        impressions = np.zeros(n_items, np.int64)
        gmv = 0.0
        explored = slots = 0
        daily: list[tuple[int, int]] = []  # (explored, slots) per simulated day
        click_rng = np.random.default_rng(seed + 2000)
        for day in range(WEEK_DAYS):
            day_explored, day_slots = explored, slots
            for j, u in enumerate(sessions[day]):
                now[0] = start + day * DAY + j * (DAY / args.sessions_per_day)
                items, scores = candidates[arm][int(u)]
                if policy is None:
                    shown = np.arange(min(K, len(items)))
                else:
                    outcome = policy.apply(universe, items, scores, K, session_class="returning/web", now=now[0])
                    position_of = {int(it): p for p, it in enumerate(items)}
                    shown = np.array([position_of[int(it)] for it in outcome.items], np.int64)
                    explored += int(outcome.explored.sum())
                util = utilities[arm][int(u)][shown]
                positions = np.arange(len(shown))
                p_click = click_probability(util, positions)
                p_buy = p_click * cart_probability(util) * purchase_probability(util, np.ones(len(shown)), np.ones(len(shown)))
                gmv += float((p_buy * world.price_minor[items[shown]]).sum())
                impressions[items[shown]] += 1
                slots += len(shown)
                clicks = (click_rng.random(len(shown)) < p_click).astype(np.float64)
                if policy is not None and policy.exploration is not None:
                    policy.learn("returning/web", items[shown], clicks, outcome.features)
            daily.append((explored - day_explored, slots - day_slots))
        cold_imps = impressions[world.cold]
        out[arm] = {
            "cold_median_impressions": float(np.median(cold_imps)) if len(cold_imps) else None,
            "cold_mean_impressions": float(cold_imps.mean()) if len(cold_imps) else None,
            "cold_shown_share": float((cold_imps > 0).mean()) if len(cold_imps) else None,
            "cold_share_of_slots": float(cold_imps.sum() / max(slots, 1)),
            "expected_gmv": round(gmv, 1),
            "explored_share": explored / max(slots, 1),
            "max_daily_explored_share": max(e / max(n, 1) for e, n in daily),
            "budget_never_exceeded": all(e <= args.explore_share * n + 1e-9 for e, n in daily),
        }
    base, pol = out["baseline"], out["policy"]
    out["cold_median_impressions_lift"] = (pol["cold_median_impressions"] / base["cold_median_impressions"] - 1
                                           if base["cold_median_impressions"] else None)
    out["cold_mean_impressions_lift"] = (pol["cold_mean_impressions"] / base["cold_mean_impressions"] - 1
                                         if base["cold_mean_impressions"] else None)
    out["gmv_change"] = pol["expected_gmv"] / base["expected_gmv"] - 1 if base["expected_gmv"] else None
    return out


if __name__ == "__main__":
    main()
