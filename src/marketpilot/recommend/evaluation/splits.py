"""Splitting protocols for offline evaluation. The unit is a (user, listing) pair: every event
of a pair lands on the same side, so a test item is never one the user already had in train.

- ``ms-recommenders``: per user, a random 75/25 split of their pairs with seed 42, by the rule
  of Microsoft Recommenders' `python_stratified_split` (each user's pairs shuffled, the first
  round(0.75 n) go to train), the protocol behind their published MovieLens-100K figures.
  Our own random numbers draw it, so it is not their partition: the one their splitter
  draws differs by release, and `benchmarks/bench_recommend_partitions.py` scores those.
- ``leave-last-out``: per user, the pair with the latest interaction is the test; users with
  a single pair stay entirely in train.

`validation_split` carves a validation part out of a training part the same way, with a
different seed, so that hyperparameters are tuned without ever seeing the test part;
`fold_split` cuts a training part into per-user folds (each pair in exactly one), for
K-fold stacking of the ranker.
"""

from __future__ import annotations

import numpy as np

from marketpilot.recommend.interactions import Interactions

PROTOCOLS = ("ms-recommenders", "leave-last-out")
MS_RATIO = 0.75
MS_SEED = 42


def _pairs(data: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair id per row, user of each pair, latest time of each pair)."""
    key = data.users * data.catalog.n_items + data.items
    uniq, pair = np.unique(key, return_inverse=True)
    latest = np.full(len(uniq), np.iinfo(np.int64).min)
    np.maximum.at(latest, pair, data.times)
    return pair, (uniq // data.catalog.n_items).astype(np.int64), latest


def random_split(data: Interactions, ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row masks (train, test): per user, round(ratio * pairs) random pairs go to train."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"split ratio must be between 0 and 1, got {ratio}")
    pair, pair_user, _ = _pairs(data)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(pair_user)), pair_user))
    users_sorted = pair_user[order]
    starts = np.searchsorted(users_sorted, users_sorted, side="left")
    position = np.arange(len(order)) - starts
    counts = np.bincount(pair_user, minlength=data.catalog.n_users)
    n_train = np.round(counts * ratio).astype(np.int64)
    train_pair = np.zeros(len(pair_user), bool)
    train_pair[order] = position < n_train[users_sorted]
    return train_pair[pair], ~train_pair[pair]


def leave_last_out(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Row masks (train, test): each user's most recent pair is the test (ties: higher item index)."""
    pair, pair_user, latest = _pairs(data)
    order = np.lexsort((np.arange(len(pair_user)), latest, pair_user))
    last_of_user = np.ones(len(order), bool)
    last_of_user[:-1] = pair_user[order][1:] != pair_user[order][:-1]
    counts = np.bincount(pair_user, minlength=data.catalog.n_users)
    test_pair = np.zeros(len(pair_user), bool)
    chosen = order[last_of_user]
    test_pair[chosen[counts[pair_user[chosen]] > 1]] = True
    return ~test_pair[pair], test_pair[pair]


def split(data: Interactions, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    if protocol == "ms-recommenders":
        return random_split(data, MS_RATIO, MS_SEED)
    if protocol == "leave-last-out":
        return leave_last_out(data)
    raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def validation_split(train: Interactions, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks (fit, validation) over the rows of a training part: a random per-user holdout."""
    return random_split(train, 1.0 - holdout, seed)


def fold_split(data: Interactions, folds: int, seed: int) -> np.ndarray:
    """Fold (0..folds-1) of each row: per user, the pairs are shuffled and dealt to the folds in
    turn from a random first fold, so each user's pairs spread evenly over the folds and every
    event of a pair lands in the same fold."""
    if folds < 2:
        raise ValueError(f"fold_split needs at least 2 folds, got {folds}")
    pair, pair_user, _ = _pairs(data)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(pair_user)), pair_user))
    users_sorted = pair_user[order]
    position = np.arange(len(order)) - np.searchsorted(users_sorted, users_sorted, side="left")
    offset = rng.integers(0, folds, data.catalog.n_users)
    fold = np.empty(len(pair_user), np.int64)
    fold[order] = (position + offset[users_sorted]) % folds
    return fold[pair]
