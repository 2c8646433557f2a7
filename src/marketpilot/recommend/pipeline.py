"""The two-stage recommender: several retrievers propose candidates, a LightGBM model ranks them.

Fitting (all on the data given, never on anything held out for evaluation):

1. The training pairs are cut into `validation_repeats` per-user folds (K-fold stacking);
   per fold the retrievers are fitted on the other folds and produce candidates for every
   user; a candidate's label is whether the user has it in the held-out fold. Labels thus
   come only from interactions the retrievers did not see, and every pair is a label once.
2. On those candidate groups the pipeline picks the weights of a linear blend of the
   retrievers' per-user z-scores (`blend`, grid in `blend_grid`, the first retriever's
   weight fixed at 1) and trains the ranker (`RankerConfig.bag` boosters, raw scores
   averaged). The ranker reads only scale-free features (per-user z-score, score over the
   user's top score, log rank, item popularity percentile, log user activity): raw scores
   change scale between a retriever fitted on part of the data and the final one fitted on
   all of it, and a ranker that leans on them is miscalibrated at serving time. Which
   ordering is served is decided one level down (`fit`): the same procedure on 90% of each
   user's pairs (1 - `validation_holdout`), the retrievers refitted on that part, and the
   NDCG@10 on the other 10% of the ranker
   (plus `ranker_first_weight` x the first retriever's z-score, the weight from
   `ranker_first_grid`), the blend and the first retriever alone compared. The better of the
   blend and the first retriever is the stage-1 ordering; it is served instead of the ranker
   (`uses_ranker`) only when it leads the ranker by more than `STAGE1_MIN_SE` standard errors
   of the per-user difference (`ranker_kept`): a lead within the holdout's noise is no
   evidence against a model that reads every stage-1 score. The comparison is recorded in
   `validation` and ships with the model, so a dataset where learning to rank does not pay
   off gets an honest stage-1 ranking instead of a worse learned one.
3. The retrievers are refitted on all the data.

Serving (`recommend`) scores one user or anonymous session: fitted factors for a known user,
the session's history for everything else; an unknown user with no history gets popularity in
their region (the `popular` retriever with group ``region:<code>``). Items whose `allowed` is
False and items in the history are never returned.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from marketpilot.recommend.candidates import CandidateSet, retrieve, score_features
from marketpilot.recommend.evaluation.metrics import paired_lead, user_ndcg
from marketpilot.recommend.evaluation.splits import fold_split, validation_split
from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.model import BoolArray, Candidates, Catalog, Query
from marketpilot.recommend.popularity import Popularity
from marketpilot.recommend.ranker import Ranker, RankerConfig
from marketpilot.recommend.readers_writer import ReadersWriterLock
from marketpilot.recommend.retrievers.als import ALS
from marketpilot.recommend.retrievers.base import Batch, Retriever
from marketpilot.recommend.retrievers.content import ContentEmbedding
from marketpilot.recommend.retrievers.cooccurrence import CoOccurrence
from marketpilot.recommend.retrievers.ease import EASE
from marketpilot.recommend.retrievers.sequence import SessionSequence
from marketpilot.recommend.retrievers.timeline import TimelineNeighbours
from marketpilot.recommend.side_features import SideFeatures, pair_counts, segment_codes
from marketpilot.recommend.stage1 import (
    POPULARITY_TIE_BREAK,
    SAME_SELLER_BONUS,
    SIMILAR_RETRIEVERS,
    LargeStage1,
    extend_catalogue,
)

RETRIEVER_TYPES: dict[str, type[Retriever]] = {
    "ease": EASE, "cooc": CoOccurrence, "als": ALS, "seq": SessionSequence, "content": ContentEmbedding,
    "near": TimelineNeighbours,
}
POPULAR = "popular"
# The nested decision serves the stage-1 ordering instead of the ranker only when it leads by
# more than this many standard errors of the per-user difference in NDCG@10 (`ranker_kept`).
# Until 2026-11-25 the better mean won outright; on a 10% holdout the two means are a few
# thousandths apart with a standard error about as large (MovieLens-100K's training part:
# stage 1 led by 0.0004, SE 0.0029, on one partition of the data and the blend was served),
# while on the 25% validation splits of seeds 7-12 the served ranker beat the stage-1 ordering
# every time, by 0.0006-0.0088 NDCG@10 (docs/recommendations.md). The ranker reads every
# stage-1 score, so a tie is not evidence that it is worse.
STAGE1_MIN_SE = 2.0
# Cells (users x items) scored at once in stage 1: each retriever holds a dense float32 array
# of that size plus masks and ranks, so this bounds a batch to a few hundred MB (scoring all
# 5,000 users of a 100k-listing catalogue at once took 23 GB and was killed).
BATCH_CELLS = 4_000_000


@dataclass
class PipelineConfig:
    """Defaults chosen once on a validation split of MovieLens-100K's training part and kept
    for every data set; `depth` is how many candidates each retriever contributes."""

    ease_l2: float = 500.0
    als_factors: int = 64
    # ALS's l2 penalty and confidence scale (`retrievers/als.py`); the `als` baselines of
    # `marketpilot evaluate recommend` and of the simulator bench use the same settings
    # (`als_retriever`). Heavy regularisation, chosen on the validation split: ALS alone
    # 0.2099 -> 0.2753 there (`ALS()`'s own defaults are l2 0.05, confidence 2). It shrinks
    # rarely-seen items' factors to norms near 1e-3, which `ann.AnnIndex` searches through a
    # Euclidean reduction (hnswlib's inner-product graph could not; docs/recommendations.md).
    als_regularization: float = 40.0
    als_alpha: float = 4.0
    cooc_alpha: float = 0.8
    cooc_beta: float = 0.3
    # Steps apart in a history within which two listings count as timeline neighbours, and
    # the weight per step beyond the first (`retrievers/timeline.py`); window 0 leaves that
    # retriever out.
    timeline_window: int = 10
    timeline_decay: float = 0.5
    depth: dict[str, int] = field(default_factory=lambda: {
        "ease": 100, "cooc": 50, "near": 50, "als": 50, "seq": 20, "content": 20, POPULAR: 20})
    # Share of each user's pairs the ranker-or-not and cold-slot decisions are judged on
    # (seed 1000).
    validation_holdout: float = 0.1
    # The ranker's training groups: the data cut into this many per-user folds, retrievers
    # fitted on all folds but one and candidates labelled by the one left out (K-fold
    # stacking: every pair is a label once). 1 = a single `validation_holdout` repeat.
    validation_repeats: int = 4
    ranker: RankerConfig = field(default_factory=lambda: RankerConfig(objective="binary", bag=3))
    # Weights tried for the first retriever's per-user z-score added to the ranker's log-odds
    # (0 = the ranker alone), the best on the nested holdout is kept. One value by default:
    # 0.1, chosen on a 25% validation split of MovieLens-100K's training part (0 / 0.1 / 0.2 /
    # 0.3: 0.2629 / 0.2713 / 0.2699 / 0.2681); given the grid (0, 0.1, 0.2, 0.3, 0.5), the
    # 10% nested holdout (a few positives per user) picked 0, which that split scored 0.2639
    # against 0.2702 for 0.1.
    ranker_first_grid: tuple[float, ...] = (0.1,)
    # Weights tried for each non-first retriever in the stage-1 blend of per-user z-scores.
    blend_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    batch_users: int = 256  # at most; fewer on large catalogues (`BATCH_CELLS`)
    # Slots of each list (counted from the end) offered to a listing nobody has interacted
    # with yet, when its content matches the user's profile at least `cold_min_z` standard
    # deviations above the catalogue mean: new inventory must surface before it has history.
    cold_slots: int = 1
    cold_min_z: float = 3.0
    # The cold slots are kept unless they lower the nested holdout's NDCG@10 by more than this
    # share. Held-out pairs cannot reward a listing nobody has seen, so a no-loss rule drops
    # the slot as soon as the ranker's last warm item is worth anything; this is the price in
    # NDCG@10 the platform pays to surface new inventory (on the simulator of
    # benchmarks/bench_recommend_quality the slot is what gives the cold-start hit rate; a
    # no-loss rule made it 0 with the K-fold ranker). 2% until 2026-11-24, when the ranker's
    # side features made the slot cost 3.0% on the simulator's nested holdout and the 2%
    # budget dropped it (hit rate 0): a policy ceiling, raised after seeing that, not a
    # figure tuned for accuracy (on MovieLens-100K the slot costs 0.2% and is kept either way).
    cold_max_loss: float = 0.05
    popularity_half_life_days: float | None = 30.0
    # From this many listings on, stage 1 stops scoring every listing per user: one-user
    # requests take the embedding retrievers' top items from HNSW indexes and the item-item
    # retrievers' from sparse rows, with the same features (`stage1.py`). Smaller catalogues
    # (MovieLens-100K: 1,682 items) keep the exact dense path.
    ann_min_items: int = 20_000
    # Boosters in the ranker's bag from `ann_min_items` listings on (trained, validated and
    # served so): each booster costs about 11 us per candidate per request on this machine,
    # three of them over ~160 candidates took more than half of a 100k-listing request.
    large_bag: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PipelineConfig:
        raw = dict(raw)
        raw["ranker"] = RankerConfig(**raw["ranker"])
        if "blend_grid" in raw:
            raw["blend_grid"] = tuple(raw["blend_grid"])
        if "ranker_first_grid" in raw:
            raw["ranker_first_grid"] = tuple(raw["ranker_first_grid"])
        return cls(**raw)


class TwoStagePipeline:
    """Implements :class:`~marketpilot.recommend.model.Recommender`."""

    name = "two-stage"

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.catalog: Catalog = Catalog.build([], [])
        self.retrievers: dict[str, Retriever] = {}
        self.popularity = Popularity(self.config.popularity_half_life_days)
        self.ranker: Ranker | None = None
        self.uses_ranker = False
        self.ranker_first_weight = 0.0  # weight of the first retriever's z added to the ranker's score
        self.blend: dict[str, float] = {}
        self._blend_wins = False
        self.cold_slots = self.config.cold_slots  # as kept by validation (see `_decide`)
        self.validation: dict[str, float] = {}
        self.item_texts: list[str] | None = None
        self.item_sellers: np.ndarray | None = None  # int64 seller code per item, -1 unknown
        self.user_region: np.ndarray | None = None  # int64 code into region_names, -1 unknown
        self.region_names: list[str] = []
        self.item_popularity = np.zeros(0, np.float32)
        self.user_activity = np.zeros(0, np.float32)
        self._large = LargeStage1()  # stage 1 above `ann_min_items` (and serving caches)
        self.side = SideFeatures()  # ranker features from categories, segments, times
        # requests read the model together; adding listings replaces its arrays alone
        self._serving = ReadersWriterLock()

    # -- fitting --------------------------------------------------------------------------------

    def fit(
        self,
        data: Interactions,
        *,
        item_texts: list[str] | None = None,
        item_sellers: np.ndarray | None = None,
        user_regions: list[str | None] | None = None,
        item_categories: list[str | None] | None = None,
        user_segments: list[str | None] | None = None,
    ) -> TwoStagePipeline:
        """Fit on `data`. Optional side information, in catalogue order: listing texts (content
        retriever, cold start), seller code per listing, region per user."""
        self.catalog = data.catalog
        self.item_texts = item_texts
        self.item_sellers = None if item_sellers is None else np.asarray(item_sellers, np.int64)
        self.side = SideFeatures.for_catalogue(item_categories, segment_codes(user_segments)[0])
        if user_regions is not None:
            self.region_names = sorted({r for r in user_regions if r})
            code = {r: k for k, r in enumerate(self.region_names)}
            self.user_region = np.array([code.get(r, -1) if r else -1 for r in user_regions], np.int64)
        n = max(1, self.config.validation_repeats)
        nested = False
        if n > 1:
            # The decision replays the whole procedure one level down: ranker and blend trained
            # on groups from inside a (1 - holdout) share, then applied to retrievers refitted on
            # all of that share and scored on the rest, exactly as the final model is used.
            outer_fit, outer_held = validation_split(data, self.config.validation_holdout, seed=1000)
            inner = data.take(outer_fit)
            inner_groups = [g for g in self._groups(inner, n) if len(g[2]) and len(g[0])]
            held = self._group(inner, data.take(outer_held), data.weights)
            if inner_groups and len(held[2]) and len(held[0]):
                self._train_ranker(inner_groups)
                self._decide(held)
                nested = True
        if nested:
            self._train_ranker(self._groups(data, n))
        else:  # too little data to nest: train on all folds but the last, decide on the last
            groups = self._groups(data, n)
            self._train_ranker(groups[:-1] if n > 1 else groups)
            self._decide(groups[-1])
        if not self._blend_wins:
            self.blend = {self._first(): 1.0}
        self._fit_stage1(data)
        return self

    def _groups(self, data: Interactions, folds: int) -> list[tuple[CandidateSet, np.ndarray, np.ndarray]]:
        """K-fold stacking: per fold, retrievers fitted on the other folds, candidates labelled by
        the fold (with one fold, a single random `validation_holdout` share is held out)."""
        if folds <= 1:
            fit_rows, val_rows = validation_split(data, self.config.validation_holdout, seed=1)
            return [self._group(data.take(fit_rows), data.take(val_rows), data.weights)]
        fold = fold_split(data, folds, seed=1)
        return [self._group(data.take(fold != f), data.take(fold == f), data.weights) for f in range(folds)]

    def _group(self, fit: Interactions, held: Interactions,
               weights: np.ndarray) -> tuple[CandidateSet, np.ndarray, np.ndarray]:
        """Retrievers fitted on `fit`; candidates for the users with positives in `held`."""
        self._fit_stage1(fit)
        labels = _positives(held.matrix(), weights)
        users = np.flatnonzero(np.diff(labels.indptr) > 0)
        if len(users) == 0:
            return CandidateSet(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 0)), ()), np.empty(0), users
        fit_matrix = fit.matrix()
        recent = fit.histories()
        cs = self._candidates_in_batches(users, fit_matrix[users], [recent[u] for u in users])
        y = np.asarray(labels[users][cs.rows, cs.items]).ravel().astype(np.float32)
        return cs, y, users

    def _fit_stage1(self, data: Interactions) -> None:
        c = self.config
        retrievers: dict[str, Retriever] = {}
        if data.catalog.n_items <= (EASE.max_items or 0):
            retrievers["ease"] = EASE(c.ease_l2)
        retrievers["cooc"] = CoOccurrence(c.cooc_alpha, c.cooc_beta)
        retrievers["als"] = als_retriever(c)
        retrievers["seq"] = SessionSequence()
        if c.timeline_window:
            retrievers["near"] = TimelineNeighbours(c.timeline_window, c.timeline_decay)
        if self.item_texts is not None:
            content = self.retrievers.get("content")
            if not isinstance(content, ContentEmbedding) or content.item_vectors is None:
                content = ContentEmbedding().fit_texts(self.item_texts)
            retrievers["content"] = content
        for r in retrievers.values():
            r.fit(data)
        self.retrievers = retrievers
        groups = {}
        if self.user_region is not None:
            groups = {f"region:{name}": np.flatnonzero(self.user_region == k) for k, name in enumerate(self.region_names)}
        self.popularity = Popularity(c.popularity_half_life_days).fit(data, groups)
        self.side.fit(data)
        x = data.matrix(binary=True)
        self.item_popularity = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
        self.user_activity = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)

    def _train_ranker(self, train: list[tuple[CandidateSet, np.ndarray, np.ndarray]]) -> None:
        first = self._first()
        self.blend = self._fit_blend(train)
        names = tuple(n for n in train[0][0].names if not n.endswith("_score"))
        cols = [train[0][0].names.index(n) for n in names]
        features = np.vstack([g[0].features[:, cols] for g in train])
        labels = np.concatenate([g[1] for g in train])
        sizes = np.concatenate([g[0].group_sizes(len(g[2])) for g in train])
        tie = names.index(f"{first}_lrank") if f"{first}_lrank" in names else 0
        ranker_config = self.config.ranker
        if self.catalog.n_items >= self.config.ann_min_items:
            ranker_config = replace(ranker_config, bag=min(ranker_config.bag, self.config.large_bag))
        self.ranker = Ranker(names, ranker_config, tie_feature=tie).fit(features, labels, sizes)

    def _decide(self, held: tuple[CandidateSet, np.ndarray, np.ndarray]) -> None:
        """Ranker, blend or first retriever alone, and the cold slots, by NDCG@10 on `held`."""
        first = self._first()
        cs, y, users = held
        # the ranker's log-odds plus w x the first retriever's z-score, w from the grid (the
        # smallest w wins ties); the z-score steadies a tree model whose inputs were fitted on
        # less data than the retrievers it is applied to
        self.ranker_first_weight = 0.0
        raw = self._ranker_scores(cs)
        first_z = cs.features[:, cs.names.index(f"{first}_z")]

        def per_user(scores: np.ndarray) -> np.ndarray:
            return self._user_ndcg(cs, y, len(users), scores)

        alone = per_user(raw)
        learned, weight, ranker_users = -1.0, 0.0, alone
        for w in self.config.ranker_first_grid:
            got = per_user(raw + w * first_z)
            if _mean(got) > learned + 1e-9:
                learned, weight, ranker_users = _mean(got), float(w), got
        self.ranker_first_weight = weight
        stage1_users = per_user(self._blend_scores(cs, {first: 1.0}))
        blend_users = per_user(self._blend_scores(cs, self.blend))
        stage1, blended = _mean(stage1_users), _mean(blend_users)
        self.validation = {"ranker_ndcg_at_10": learned, "ranker_alone_ndcg_at_10": _mean(alone),
                           "ranker_first_weight": weight, "blend_ndcg_at_10": blended,
                           "stage1_ndcg_at_10": stage1}
        self._blend_wins = blended > stage1
        # the ranker against the stage-1 ordering that would be served instead, user by user
        self.uses_ranker, lead, se = ranker_kept(ranker_users, blend_users if self._blend_wins else stage1_users)
        self.validation |= {"stage1_lead_over_ranker": lead, "stage1_lead_se": se}
        # The cold slots cost a warm item each; keep them unless the held-out repeat says they
        # lower NDCG@10 by more than `cold_max_loss` (item popularity is still that repeat's fit).
        self.cold_slots = 0
        plain = self._group_ndcg(cs, y, len(users), self._final_scores(cs, 10))
        self.cold_slots = self.config.cold_slots
        with_cold = self._group_ndcg(cs, y, len(users), self._final_scores(cs, 10))
        self.validation["cold_slots_ndcg_at_10"] = with_cold
        self.validation["no_cold_slots_ndcg_at_10"] = plain
        if with_cold < plain * (1.0 - self.config.cold_max_loss):
            self.cold_slots = 0

    def _fit_blend(self, groups: list[tuple[CandidateSet, np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Blend weights with the best mean NDCG@10 over `groups` (first retriever weight 1)."""
        first = self._first()
        names = groups[0][0].names
        others = [n for n in self.retrievers if n != first and f"{n}_z" in names and n != "content"]
        best, best_ndcg = {first: 1.0}, -1.0
        for weights in itertools.product(self.config.blend_grid, repeat=len(others)):
            blend = {first: 1.0} | {n: float(w) for n, w in zip(others, weights, strict=True) if w > 0}
            ndcg = float(np.mean([self._group_ndcg(cs, y, len(u), self._blend_scores(cs, blend)) for cs, y, u in groups]))
            if ndcg > best_ndcg + 1e-9:
                best, best_ndcg = blend, ndcg
        return best

    @staticmethod
    def _blend_scores(cs: CandidateSet, blend: dict[str, float]) -> np.ndarray:
        out = np.zeros(len(cs), np.float64)
        for name, w in blend.items():
            out += w * cs.features[:, cs.names.index(f"{name}_z")]
        return out

    def _ranker_scores(self, cs: CandidateSet) -> np.ndarray:
        assert self.ranker is not None
        cols = [cs.names.index(n) for n in self.ranker.feature_names]
        scores = self.ranker.score(cs.features[:, cols])
        if self.ranker_first_weight:
            scores = scores + self.ranker_first_weight * cs.features[:, cs.names.index(f"{self._first()}_z")]
        return scores

    @staticmethod
    def _group_ndcg(cs: CandidateSet, labels: np.ndarray, n_rows: int, scores: np.ndarray, k: int = 10) -> float:
        """NDCG@k over the held-out positives (those outside the candidates count as misses)."""
        return _mean(TwoStagePipeline._user_ndcg(cs, labels, n_rows, scores, k))

    @staticmethod
    def _user_ndcg(cs: CandidateSet, labels: np.ndarray, n_rows: int, scores: np.ndarray, k: int = 10) -> np.ndarray:
        """`_group_ndcg` per user with a positive among the candidates, rows ascending."""
        pos = labels > 0
        if not pos.any():
            return np.zeros(0)
        top = _top_from_pairs(cs.rows, cs.items, scores, n_rows, k)
        relevant = sp.csr_matrix((np.ones(int(pos.sum())), (cs.rows[pos], cs.items[pos])),
                                 shape=(n_rows, int(cs.items.max(initial=0)) + 1))
        return user_ndcg(top, relevant, k)

    def _first(self) -> str:
        """The retriever whose order is the stage-1 ranking (EASE where the catalogue allows)."""
        return "ease" if "ease" in self.retrievers else "cooc"

    # -- scoring --------------------------------------------------------------------------------

    def _scores(self, batch: Batch, regions: list[str | None]) -> dict[str, np.ndarray]:
        out = {name: r.score(batch) for name, r in self.retrievers.items()}
        pop = np.stack([self.popularity.scores([f"region:{r}"] if r else []) for r in regions])
        out[POPULAR] = pop
        return out

    def _batch_rows(self) -> int:
        """Users scored at once: stage 1 holds a few dense (users x items) arrays per
        retriever, so the batch shrinks as the catalogue grows (about `BATCH_CELLS` cells)."""
        return max(1, min(self.config.batch_users, BATCH_CELLS // max(self.catalog.n_items, 1)))

    def _candidates_in_batches(self, users: np.ndarray, history: sp.csr_matrix,
                               recent: list[np.ndarray]) -> CandidateSet:
        """`_candidates_for` over any number of users in bounded memory; rows stay positions in `users`."""
        step = self._batch_rows()
        if len(users) <= step:
            return self._candidates_for(users, history, recent)
        parts = [(lo, self._candidates_for(users[lo:lo + step], history[lo:lo + step], recent[lo:lo + step]))
                 for lo in range(0, len(users), step)]
        return CandidateSet(
            np.concatenate([cs.rows + lo for lo, cs in parts]),
            np.concatenate([cs.items for _, cs in parts]),
            np.vstack([cs.features for _, cs in parts]),
            parts[0][1].names,
            np.concatenate([cs.coldness for _, cs in parts]),
        )

    def _candidates_for(self, users: np.ndarray, history: sp.csr_matrix, recent: list[np.ndarray],
                        allowed: BoolArray | None = None, regions: list[str | None] | None = None) -> CandidateSet:
        if regions is None:
            regions = [self._region_of(u) for u in users]
        batch = Batch(users, history.tocsr(), recent)
        if self.catalog.n_items >= self.config.ann_min_items:
            rows, items, cols, names = self._large.candidates(
                self.retrievers, self.popularity, batch, regions,
                None if allowed is None else np.asarray(allowed, bool), self.config.depth, self.catalog.n_items)
        else:
            scores = self._scores(batch, regions)
            eligible = np.ones((len(users), self.catalog.n_items), bool) if allowed is None else np.repeat(
                np.asarray(allowed, bool)[None, :], len(users), axis=0)
            h = batch.history.tocoo()
            eligible[h.row, h.col] = False
            for r, items in enumerate(recent):
                eligible[r, items] = False
            rows, items, ranks = retrieve(scores, eligible, self.config.depth)
            cols, names = score_features(scores, eligible, rows, items, ranks)
        ordered = self._large.sorted_popularity(self.item_popularity)
        pct = np.searchsorted(ordered, self.item_popularity[items], side="right") / max(len(ordered), 1)
        cols.append(pct.astype(np.float64))
        names.append("item_popularity_pct")
        activity = np.asarray(batch.history.getnnz(axis=1), np.float64)
        cols.append(np.log1p(activity[rows]))
        names.append("user_log_activity")
        cols.append(self._seller_affinity(batch.history, rows, items))
        names.append("seller_affinity")
        side_cols, side_names = self.side.features(users, batch.history, rows, items)
        cols += side_cols
        names += side_names
        empty = np.diff(batch.history.indptr) == 0
        in_catalog = (users >= 0) & (users < self.catalog.n_users)
        known = in_catalog & ("als" in self.retrievers)
        coldness = np.where(empty, np.where(known, 1, 2), np.where(in_catalog, 0, 3)).astype(np.int8)
        return CandidateSet(rows, items, np.column_stack(cols), tuple(names), coldness)

    def _seller_affinity(self, history: sp.csr_matrix, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Share of the user's history sold by the candidate's seller (NaN without sellers)."""
        if self.item_sellers is None:
            return np.full(len(rows), np.nan)
        sellers = self.item_sellers
        h = history.tocsr()
        counts = np.diff(h.indptr)
        hist_seller = sellers[h.indices]
        hist_row = np.repeat(np.arange(h.shape[0]), counts)
        known = hist_seller >= 0
        s = sellers[items]
        out = np.zeros(len(rows))
        ok = s >= 0
        # seller codes are not bounded by a stored count: a key width no code reaches
        out[ok] = pair_counts(hist_row[known], hist_seller[known], rows[ok], s[ok], h.shape[0], 1 << 32) \
            / np.maximum(counts[rows[ok]], 1)
        return out

    def _region_of(self, user: int) -> str | None:
        if self.user_region is None or not 0 <= user < len(self.user_region) or self.user_region[user] < 0:
            return None
        return self.region_names[int(self.user_region[user])]

    def _rank(self, cs: CandidateSet) -> np.ndarray:
        """Ranker scores; stage-1 order where the ranker lost on validation; and for users
        with no history at all (cold start) popularity in their region, since neither the
        ranker nor the other retrievers learnt anything about such users. A known user who
        arrives with no history (the service had none to send) is ranked by their ALS factors.
        An anonymous session with history gets the stage-1 order (blend or first retriever):
        the ranker learnt only from catalogue users' histories, and on a short session it can
        let region popularity outvote what the session just looked at."""
        if self.uses_ranker and self.ranker is not None:
            scores = self._ranker_scores(cs)
        else:
            scores = self._blend_scores(cs, self.blend or {self._first(): 1.0})
            scores -= 1e-7 * cs.features[:, cs.names.index(f"{self._first()}_lrank")]
        coldness = cs.coldness[cs.rows] if len(cs.coldness) else np.zeros(len(cs), np.int8)
        if coldness.any():
            scores = scores.copy()
            known = coldness == 1
            scores[known] = cs.features[known, cs.names.index("als_score")]
            cold = coldness == 2
            scores[cold] = cs.features[cold, cs.names.index(f"{POPULAR}_score")]
            session = coldness == 3
            if session.any() and self.uses_ranker:
                first = self._first()
                stage1 = self._blend_scores(cs, self.blend or {first: 1.0})
                stage1 -= 1e-7 * cs.features[:, cs.names.index(f"{first}_lrank")]
                scores[session] = stage1[session]
        return scores

    def _final_scores(self, cs: CandidateSet, k: int, pool: int = 0) -> np.ndarray:
        """Ranked scores, with the best matching never-seen listings of each row lifted into
        its list: `cold_slots` (as kept by validation, see `PipelineConfig.cold_slots`) at the
        end of the slate (the first `k - pool`), and, when the caller asks for a re-ranking
        pool, `PipelineConfig.cold_slots` more per 10 pool positions at the end of the pool,
        whatever validation kept: the slate policy decides how many of those reach the slate
        (its fairness bound), and held-out repeats cannot measure listings nobody has seen."""
        scores = self._rank(cs)
        slate = max(k - pool, 0)
        slots = min(self.cold_slots, slate)
        extra = min(max(self.config.cold_slots, 1) * max(1, pool // 10), pool) if pool > 0 else 0
        if slots + extra <= 0 or "content_z" not in cs.names or len(cs) == 0:
            return scores
        cold = (self.item_popularity[cs.items] == 0) & (cs.features[:, cs.names.index("content_z")] >= self.config.cold_min_z)
        if not cold.any():
            return scores
        scores = scores.copy()
        n_rows = int(cs.rows.max()) + 1
        content = cs.features[:, cs.names.index("content_z")]
        best_cold = _top_from_pairs(cs.rows[cold], np.flatnonzero(cold), content[cold], n_rows, slots + extra)
        for row in np.unique(cs.rows[cold]):
            ordered = np.sort(scores[(cs.rows == row) & ~cold])[::-1]
            chosen = best_cold[row][best_cold[row] >= 0]
            # each group sits just above the warm item it displaces: the slate's at position
            # slate - slots, the pool's at k - extra (counting the slate's cold ones above it)
            for group, displaced in ((chosen[:slots], slate - slots), (chosen[slots:], k - extra - slots)):
                if len(group) == 0:
                    continue
                cut = ordered[displaced] if len(ordered) > displaced else (ordered[-1] if len(ordered) else 0.0)
                scores[group] = np.maximum(scores[group], cut + 1e-6 * (1 + np.arange(len(group))[::-1]))
        return scores

    def recommend_batch(self, users: np.ndarray, history: sp.csr_matrix, recent: list[np.ndarray], k: int,
                        allowed: BoolArray | None = None) -> np.ndarray:
        """(len(users), k) item indices best first, -1 padding; history and disallowed excluded."""
        out = np.full((len(users), k), -1, np.int64)
        step = self._batch_rows()
        for lo in range(0, len(users), step):
            hi = min(lo + step, len(users))
            cs = self._candidates_for(users[lo:hi], history[lo:hi], recent[lo:hi], allowed)
            out[lo:hi] = _top_from_pairs(cs.rows, cs.items, self._final_scores(cs, k), hi - lo, k)
        return out

    def prepare_serving(self) -> dict[str, float]:
        """Start-up work for serving, done before the first request: stage 1's HNSW indexes
        when the catalogue is large enough to use them, and the ranker compiled to native code
        (`Ranker.compile`). Returns the seconds per index and ``ranker`` for the compile."""
        built: dict[str, float] = {}
        if self.catalog.n_items >= self.config.ann_min_items:
            built |= self._large.prepare(self.retrievers)
        if self.uses_ranker and self.ranker is not None and not self.ranker.compiled:
            built["ranker"] = self.ranker.compile()
        return built

    def add_listings(self, listing_ids: list[str], texts: list[str] | None = None,
                     sellers: np.ndarray | None = None, categories: list[str | None] | None = None) -> np.ndarray:
        """Listings created after training, servable at once (`stage1.extend_catalogue`);
        `categories` (their `category_path`s) give them the ranker's category features.
        Requests in flight finish first; new ones wait until every array has grown."""
        with self._serving.writing():
            return extend_catalogue(self, listing_ids, texts, sellers, categories)

    # -- the Recommender contract ------------------------------------------------------------------

    def recommend(self, query: Query, allowed: BoolArray | None = None) -> Candidates:
        with self._serving.reading():
            return self._recommend(query, self._fitted_mask(allowed))

    def _fitted_mask(self, allowed: BoolArray | None) -> BoolArray | None:
        """A mask built before listings were added (shorter than the catalogue): the added
        listings stay hidden for that request."""
        n = self.catalog.n_items
        if allowed is None or len(allowed) >= n:
            return allowed
        return np.concatenate([np.asarray(allowed, bool), np.zeros(n - len(allowed), bool)])

    def _recommend(self, query: Query, allowed: BoolArray | None) -> Candidates:
        n = self.catalog.n_items
        hist = np.asarray(query.history, np.int64)
        hist = hist[(hist >= 0) & (hist < n)]
        seen = np.unique(hist)
        row = sp.csr_matrix((np.ones(len(seen), np.float32), seen, np.array([0, len(seen)])), shape=(1, n))
        user = query.user if 0 <= query.user < self.catalog.n_users else -1
        region = query.region if query.region is not None else self._region_of(user)
        cs = self._candidates_for(np.array([user]), row, [hist], allowed, [region])
        if len(cs) == 0:
            return Candidates(np.empty(0, np.int64), np.empty(0, np.float32))
        scores = self._final_scores(cs, query.k, min(max(query.pool, 0), query.k))
        order = np.argsort(-scores, kind="stable")[: query.k]
        return Candidates(cs.items[order].astype(np.int64), scores[order].astype(np.float32))

    def similar(self, item: int, k: int, allowed: BoolArray | None = None) -> Candidates:
        """Items most like `item`: co-occurrence and EASE neighbours blended with content
        similarity and same-seller listings, so a new listing with no interactions still gets
        neighbours from its text and its seller."""
        with self._serving.reading():
            return self._similar(item, k, self._fitted_mask(allowed))

    def _similar(self, item: int, k: int, allowed: BoolArray | None) -> Candidates:
        n = self.catalog.n_items
        if not 0 <= item < n:
            raise IndexError(f"item {item} is not in the catalogue (0..{n - 1})")
        if n >= self.config.ann_min_items:
            return self._large.similar(self.retrievers, item, k, allowed, self.item_sellers, self.item_popularity)
        row = sp.csr_matrix((np.ones(1, np.float32), ([0], [item])), shape=(1, n))
        batch = Batch(np.array([-1]), row, [np.array([item])])
        total = np.zeros(n, np.float64)
        for name in SIMILAR_RETRIEVERS:
            r = self.retrievers.get(name)
            if r is None:
                continue
            s = r.score(batch)[0].astype(np.float64)
            spread = float(s.std())
            if spread > 0:
                total += (s - s.mean()) / spread
        if self.item_sellers is not None and self.item_sellers[item] >= 0:
            total += SAME_SELLER_BONUS * (self.item_sellers == self.item_sellers[item])
        total += POPULARITY_TIE_BREAK * self.item_popularity / max(float(self.item_popularity.max(initial=0.0)), 1.0)
        mask = np.ones(n, bool) if allowed is None else np.asarray(allowed, bool).copy()
        mask[item] = False
        total[~mask] = -np.inf
        k_eff = min(k, int(mask.sum()))
        if k_eff <= 0:
            return Candidates(np.empty(0, np.int64), np.empty(0, np.float32))
        top = np.argpartition(-total, k_eff - 1)[:k_eff]
        top = top[np.argsort(-total[top], kind="stable")]
        return Candidates(top.astype(np.int64), total[top].astype(np.float32))

    # -- persistence --------------------------------------------------------------------------------

    def to_bundle(self) -> Any:
        """An :class:`~marketpilot.platform.models.artifacts.ArrayBundle` (no pickle)."""
        from marketpilot.platform.models.artifacts import ArrayBundle

        arrays: dict[str, np.ndarray] = {
            "item_popularity": self.item_popularity, "user_activity": self.user_activity,
        }
        params: dict[str, Any] = {}
        for name, r in self.retrievers.items():
            for key, value in r.state().items():
                arrays[f"r_{name}__{key}"] = value
            params[name] = r.params()
        for key, value in self.popularity.state().items():
            arrays[f"pop__{key}"] = value
        if self.item_sellers is not None:
            arrays["item_sellers"] = self.item_sellers
        for key, value in self.side.state().items():
            arrays[f"side__{key}"] = value
        if self.user_region is not None:
            arrays["user_region"] = self.user_region
        metadata = {
            "format": 1,
            "config": json.loads(json.dumps(self.config.to_json())),
            "retrievers": params,
            "retriever_order": list(self.retrievers),
            "popularity_groups": self.popularity.group_names(),
            "region_names": self.region_names,
            "listing_ids": [str(x) for x in self.catalog.listing_ids],
            "user_ids": [str(x) for x in self.catalog.user_ids],
            "uses_ranker": self.uses_ranker,
            "ranker_first_weight": self.ranker_first_weight,
            "blend": self.blend,
            "cold_slots": self.cold_slots,
            "validation": self.validation,
            "ranker": None if self.ranker is None else {
                "models": self.ranker.to_texts(), "features": list(self.ranker.feature_names),
                "tie_feature": self.ranker.tie_feature},
        }
        return ArrayBundle(arrays=arrays, metadata=metadata)

    @classmethod
    def from_bundle(cls, bundle: Any) -> TwoStagePipeline:
        meta = bundle.metadata
        out = cls(PipelineConfig.from_json(meta["config"]))
        out.catalog = Catalog.build(list(meta["listing_ids"]), list(meta["user_ids"]))
        arrays = dict(bundle.arrays)
        for name in meta["retriever_order"]:
            params = meta["retrievers"][name]
            prefix = f"r_{name}__"
            state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            out.retrievers[name] = RETRIEVER_TYPES[name].from_state(state, params)
        pop_state = {k[len("pop__"):]: v for k, v in arrays.items() if k.startswith("pop__")}
        out.popularity = Popularity.from_state(pop_state, out.config.popularity_half_life_days,
                                               list(meta["popularity_groups"]))
        out.item_popularity, out.user_activity = arrays["item_popularity"], arrays["user_activity"]
        out.item_sellers = arrays.get("item_sellers")
        side_state = {k[len("side__"):]: v for k, v in arrays.items() if k.startswith("side__")}
        if side_state:
            out.side = SideFeatures.from_state(side_state)
        out.user_region = arrays.get("user_region")
        out.region_names = list(meta["region_names"])
        out.uses_ranker = bool(meta["uses_ranker"])
        out.ranker_first_weight = float(meta.get("ranker_first_weight", 0.0))
        out.cold_slots = int(meta.get("cold_slots", out.config.cold_slots))
        out.blend = {str(k): float(v) for k, v in meta.get("blend", {}).items()}
        out.validation = dict(meta["validation"])
        if meta.get("ranker"):
            r = meta["ranker"]
            texts = list(r["models"]) if "models" in r else [r["model"]]  # "model": one booster, older bundles
            out.ranker = Ranker.from_texts(texts, tuple(r["features"]), out.config.ranker, int(r["tie_feature"]))
        return out


def _mean(per_user: np.ndarray) -> float:
    """Mean of per-user figures; 0 when no user had a held-out positive."""
    return float(per_user.mean()) if len(per_user) else 0.0


def ranker_kept(ranker: np.ndarray, stage1: np.ndarray, min_se: float = STAGE1_MIN_SE) -> tuple[bool, float, float]:
    """Whether the ranker is served, from the two orderings' NDCG@10 per held-out user (the
    same users, in the same order): yes unless the stage-1 ordering leads by more than `min_se`
    standard errors of the paired difference. Returns (kept, mean lead of stage 1, its
    standard error)."""
    if len(ranker) != len(stage1):
        raise ValueError(f"ranker_kept: {len(ranker)} ranker figures for {len(stage1)} stage-1 figures")
    if len(ranker) == 0:
        return False, 0.0, 0.0
    lead, se = paired_lead(np.asarray(stage1, np.float64), np.asarray(ranker, np.float64))
    se = 0.0 if np.isnan(se) else se  # one user: no spread to measure
    return not lead > min_se * se, lead, se


def als_retriever(config: PipelineConfig) -> ALS:
    """The ALS the pipeline fits, unfitted: also the `als` baseline it is compared with."""
    return ALS(factors=config.als_factors, regularization=config.als_regularization, alpha=config.als_alpha)


def _positives(held: sp.csr_matrix, all_weights: np.ndarray) -> sp.csr_matrix:
    """Ranker labels: held-out pairs whose strongest event is above the weakest event type in
    the data (a click, a purchase, but not a bare view, which on a marketplace mostly says
    where the page put the item); with a single event type (ratings) every pair counts."""
    weights = np.unique(all_weights)
    out = held.copy().tocsr()
    floor = weights[0] if len(weights) > 1 else 0.0
    out.data = (out.data > floor).astype(np.float32)
    out.eliminate_zeros()
    return out


def _top_from_pairs(rows: np.ndarray, items: np.ndarray, scores: np.ndarray, n_rows: int, k: int) -> np.ndarray:
    """Per row, the k best items of its (row, item, score) pairs; -1 pads."""
    out = np.full((n_rows, k), -1, np.int64)
    if len(rows) == 0:
        return out
    order = np.lexsort((-scores, rows))
    r_sorted = rows[order]
    start = np.searchsorted(r_sorted, r_sorted, side="left")
    pos = np.arange(len(order)) - start
    keep = pos < k
    out[r_sorted[keep], pos[keep]] = items[order][keep]
    return out
