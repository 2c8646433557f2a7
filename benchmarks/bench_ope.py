"""Off-policy estimators on the Open Bandit Dataset sample (obp's examples/obd protocol).

    .venv/bin/python -m benchmarks.bench_ope [--runs 20] [--campaign all] [--reward-model logistic]

Prints one JSON object:

- ``full``: each estimator's estimate and relative error on the whole Random log (what
  ``marketpilot evaluate ope`` reports), ground truth = mean click of the BTS log;
- ``repeated``: obp's example protocol proper: ``--runs`` bootstrap resamples of the Random
  log (seed = run index), the reward model refitted on each, the relative error of each
  estimator per run; mean and median over runs, next to obp's published figures for that
  protocol (DM 0.157, IPW 0.311, SNIPW 0.312, DR 0.292, Switch-DR 0.258, DRos 0.160);
- ``timing``: median ms for all six point estimates on the 10,000-round log through our
  interface, against the anchor of a hand-inlined numpy IPS (one gather, one divide, one
  mean), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from marketpilot.datasets import obd
from marketpilot.measure.ope.bernoulli_ts import bernoulli_ts_action_dist
from marketpilot.measure.ope.obd_protocol import default_estimators, obd_feedback, run_obd

OBP_PUBLISHED = {"dm": 0.157, "ips": 0.311, "snips": 0.312, "dr": 0.292, "switch_dr": 0.258, "dros": 0.160}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--campaign", default="all")
    parser.add_argument("--reward-model", default="logistic")
    args = parser.parse_args()

    full = run_obd(args.campaign, reward_model=args.reward_model, n_bootstrap=1000)
    log = obd.load_log("random", args.campaign)
    truth = float(obd.load_log("bts", args.campaign).click.mean())
    prior = obd.load_prior_bts()[args.campaign]
    dist = bernoulli_ts_action_dist(prior.alpha, prior.beta, len_list=log.n_positions)
    estimators = default_estimators()
    errors: dict[str, list[float]] = {e.name: [] for e in estimators}
    for run in range(args.runs):
        rows = np.random.RandomState(run).choice(len(log), size=len(log), replace=True)
        data = obd_feedback(log, dist, reward_model=args.reward_model, rows=rows)
        for e in estimators:
            errors[e.name].append(abs(e.estimate_policy_value(data) - truth) / truth)

    data = obd_feedback(log, dist, reward_model=args.reward_model)
    ours, anchor = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        for e in estimators:
            e.estimate_policy_value(data)
        ours.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        float(np.mean(dist[log.item_id, log.position0] / log.propensity_score * log.click))
        anchor.append((time.perf_counter() - t0) * 1e3)
    report = {
        "dataset": f"obd/{args.campaign}",
        "on_policy_value": truth,
        "full": {k: {"estimate": r.estimate, "relative_error": r.relative_error} for k, r in full.results.items()},
        "repeated": {
            "runs": args.runs,
            "mean_relative_error": {k: statistics.fmean(v) for k, v in errors.items()},
            "median_relative_error": {k: statistics.median(v) for k, v in errors.items()},
            "best": min(errors, key=lambda k: statistics.fmean(errors[k])),
            "obp_published": OBP_PUBLISHED,
        },
        "timing": {"six_estimates_ms": statistics.median(ours), "anchor_inline_ips_ms": statistics.median(anchor),
                   "ratio": statistics.median(ours) / statistics.median(anchor)},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
