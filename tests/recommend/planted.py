"""Small interaction data with planted structure, so every retriever and the pipeline can be
checked against a known answer: users of taste group g interact mostly with items of group g,
and each group's listings share title words."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

GROUPS = 3
ITEMS_PER_GROUP = 20
USERS_PER_GROUP = 30
WORDS = ("vintage leather jacket", "road bike carbon", "espresso machine steel")


def planted(seed: int = 0, per_user: int = 8, noise: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2026-01-01", tz="UTC")
    for g in range(GROUPS):
        for u in range(USERS_PER_GROUP):
            user = f"u{g}_{u:02d}"
            own = rng.choice(ITEMS_PER_GROUP, per_user, replace=False)
            for step, it in enumerate(own):
                group = g if rng.random() > noise else int(rng.integers(GROUPS))
                event = ("view", "click", "purchase")[int(rng.integers(3))]
                rows.append((user, f"i{group}_{it:02d}", event, None, start + pd.Timedelta(minutes=10 * step + u)))
    frame = pd.DataFrame(rows, columns=["user_id", "listing_id", "event", "value", "timestamp"])
    listings = pd.DataFrame({
        "listing_id": [f"i{g}_{i:02d}" for g in range(GROUPS) for i in range(ITEMS_PER_GROUP)],
        "seller_id": [f"s{g}" for g in range(GROUPS) for _ in range(ITEMS_PER_GROUP)],
        "title": [f"{WORDS[g]} {i}" for g in range(GROUPS) for i in range(ITEMS_PER_GROUP)],
        "category_path": [f"cat{g}/sub" for g in range(GROUPS) for _ in range(ITEMS_PER_GROUP)],
        "attributes": [json.dumps({"group": g}) for g in range(GROUPS) for _ in range(ITEMS_PER_GROUP)],
    })
    users = pd.DataFrame({
        "user_id": [f"u{g}_{u:02d}" for g in range(GROUPS) for u in range(USERS_PER_GROUP)],
        "region": [f"R{g}" for g in range(GROUPS) for _ in range(USERS_PER_GROUP)],
    })
    return frame, listings, users


def group_of(item_id: str) -> int:
    return int(item_id[1])


