"""How buyers respond to what they are shown: the true relevance model.

    utility(u, i, price) = KAPPA * taste_u . factors_i
                         + QUALITY_WEIGHT * quality_i
                         - price_sensitivity_u * log(price / reference_price(leaf_i))

A shown item is examined with a probability that decays with its position, and clicked if
examined with probability sigmoid(CLICK_BIAS + utility). A click leads to add-to-cart with
sigmoid(CART_BIAS + CART_SLOPE * utility); a cart to a purchase with
sigmoid(BUY_BIAS + BUY_SLOPE * utility) * (price / regular_price) ** elasticity(leaf) (capped
at 1) - so promotions convert more, by exactly the category's true elasticity. Buyers rate a
share of their purchases days later, mostly according to the item's quality.

All constants are written to `ground_truth/model.json`, so a recommender can be scored
against `utility` (true relevance) rather than against clicks alone.
"""

from __future__ import annotations

import numpy as np

KAPPA = 4.0
QUALITY_WEIGHT = 0.5
CLICK_BIAS = -3.9
EXAMINATION_DECAY = 0.6  # P(examined at position p, 0-based) = (1 + p) ** -EXAMINATION_DECAY
CART_BIAS = -2.0
CART_SLOPE = 0.5
BUY_BIAS = -0.8
BUY_SLOPE = 0.3
RATING_PROBABILITY = 0.35
RATING_DELAY_DAYS = (2.0, 12.0)


def parameters() -> dict[str, float | list[float]]:
    return {
        "kappa": KAPPA, "quality_weight": QUALITY_WEIGHT, "click_bias": CLICK_BIAS,
        "examination_decay": EXAMINATION_DECAY, "cart_bias": CART_BIAS, "cart_slope": CART_SLOPE,
        "buy_bias": BUY_BIAS, "buy_slope": BUY_SLOPE, "rating_probability": RATING_PROBABILITY,
        "rating_delay_days": list(RATING_DELAY_DAYS),
    }


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def utility(taste: np.ndarray, factors: np.ndarray, quality: np.ndarray, price_sensitivity: np.ndarray,
            log_relative_price: np.ndarray) -> np.ndarray:
    """True relevance of item rows to user rows (row-wise: taste[j] with factors[j])."""
    affinity = np.einsum("ij,ij->i", taste, factors, dtype=np.float64)
    return KAPPA * affinity + QUALITY_WEIGHT * quality - price_sensitivity * log_relative_price


def examination(position: np.ndarray) -> np.ndarray:
    return (1.0 + position) ** -EXAMINATION_DECAY


def click_probability(util: np.ndarray, position: np.ndarray) -> np.ndarray:
    return examination(position) * sigmoid(CLICK_BIAS + util)


def cart_probability(util: np.ndarray) -> np.ndarray:
    return sigmoid(CART_BIAS + CART_SLOPE * util)


def purchase_probability(util: np.ndarray, price_ratio: np.ndarray, elasticity: np.ndarray) -> np.ndarray:
    """P(purchase | in cart); price_ratio = price paid / regular price (< 1 on promotion)."""
    return np.minimum(1.0, sigmoid(BUY_BIAS + BUY_SLOPE * util) * price_ratio ** elasticity)


def rating(rng: np.random.Generator, quality: np.ndarray, util: np.ndarray) -> np.ndarray:
    """Star ratings 1-5, driven mostly by quality and a little by fit."""
    raw = 3.2 + 0.9 * quality + 0.2 * util + rng.normal(0.0, 0.8, len(quality))
    return np.clip(np.round(raw), 1, 5)
