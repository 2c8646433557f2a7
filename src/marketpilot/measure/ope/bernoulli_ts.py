"""The action distribution of a context-free Bernoulli Thompson sampling slate policy.

Reproduces obp's ``BernoulliTS(..., is_zozotown_prior=True).compute_batch_action_dist``:
``n_sim`` times draw theta_a ~ Beta(alpha_a, beta_a) and rank items by theta; the share of
draws that put item a in slot k is pi(a, k). obp itself cannot be imported here (it pulls
torch), so the same algorithm runs vectorised on numpy's legacy ``RandomState`` — one
``beta`` call per draw consumes the stream in the same order as obp's loop, so a seed gives
obp's numbers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bernoulli_ts_action_dist"]

_CHUNK = 10_000


def bernoulli_ts_action_dist(alpha: np.ndarray, beta: np.ndarray, *, len_list: int, n_sim: int = 100_000,
                             seed: int = 12345) -> np.ndarray:
    """pi of shape (n_actions, len_list): column k is the distribution of the item shown in slot k."""
    alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    if alpha.shape != beta.shape or alpha.ndim != 1:
        raise ValueError("alpha and beta must be 1-d arrays of equal length")
    if np.any(alpha <= 0) or np.any(beta <= 0):
        raise ValueError("alpha and beta must be positive")
    n_actions = alpha.shape[0]
    if not 1 <= len_list <= n_actions:
        raise ValueError(f"len_list must lie in [1, {n_actions}], got {len_list}")
    if n_sim < 1:
        raise ValueError(f"n_sim must be positive, got {n_sim}")
    rng = np.random.RandomState(seed)
    counts = np.zeros((n_actions, len_list))
    for start in range(0, n_sim, _CHUNK):
        size = min(_CHUNK, n_sim - start)
        theta = rng.beta(alpha, beta, size=(size, n_actions))
        top = np.argsort(theta, axis=1)[:, ::-1][:, :len_list]
        for k in range(len_list):
            counts[:, k] += np.bincount(top[:, k], minlength=n_actions)
    return counts / n_sim
