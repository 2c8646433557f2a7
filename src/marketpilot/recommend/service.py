"""The recommendation request path: filter, rank (model or fallback), guard, log.

One request:

1. bring availability up to date (embedded: every request; distributed: every
   ``refresh_interval``) and build the mask: servable listings, the request's filters,
   minus what the suppression rule hides (recently purchased, impressions cap);
2. read the user's / session's recent items from the online feature store (the history
   the model conditions on, and "already seen" items, which are suppressed too);
3. pick the strategy: the trained recommender, unless there is none, drift is active for it
   (``DriftService.is_active``), a feature read failed, or the time already spent plus the
   model's recent p95 would miss the latency budget; then the deterministic
   :class:`~marketpilot.recommend.fallback.PopularityFallback` serves, the response's
   ``strategy`` names why, and ``marketpilot_recommendation_fallbacks_total{reason}`` counts it;
4. drop anything the mask forbids (a model must never return such items; this guard makes
   "never served" independent of every model's correctness);
5. log the slate (``RecommendationServed``, batched through the outbox) and return it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import select

from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.features.catalog import recent_items_view
from marketpilot.platform.features.online import OnlineStore
from marketpilot.platform.monitoring.metrics import LATENCY_BUCKETS
from marketpilot.recommend.audit import ExposureAudit, exposure_audit
from marketpilot.recommend.availability import Availability, Filters, SuppressionRule
from marketpilot.recommend.events import RecommendationServed, SlateLog
from marketpilot.recommend.fallback import FALLBACK_NAME, FALLBACK_VERSION, PopularityFallback
from marketpilot.recommend.model import BoolArray, Candidates, IntArray, Query, Recommender
from marketpilot.recommend.retrievers.content import listing_text
from marketpilot.recommend.slate_feedback import SlateFeedback
from marketpilot.recommend.slate_policy import ExposureGroups, SlatePolicy, session_class

log = logging.getLogger(__name__)

MODEL_NAME = "recommend"
MAX_K = 100
HISTORY_LENGTH = 50


class Strategy:
    MODEL = "model"
    DRIFT = "fallback_drift"
    MODEL_UNAVAILABLE = "fallback_model_unavailable"
    MODEL_ERROR = "fallback_model_error"
    FEATURE_UNAVAILABLE = "fallback_feature_unavailable"
    LATENCY_BUDGET = "fallback_latency_budget"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A trained recommender and the versions to report (e.g. ``{"recommend": "3"}``)."""

    model: Recommender
    versions: dict[str, str]


ModelLoader = Callable[[], LoadedModel | None]


@dataclass(frozen=True, slots=True)
class RecommendationRequest:
    k: int = 20
    user_id: str | None = None
    session_id: str | None = None
    region: str | None = None
    device: str | None = None
    page: str | None = None
    seed_listing_id: str | None = None
    filters: Filters = field(default_factory=Filters)
    hour: int | None = None


@dataclass(frozen=True, slots=True)
class ScoredListing:
    listing_id: str
    score: float
    position: int


@dataclass(frozen=True, slots=True)
class Slate:
    request_id: str
    strategy: str
    items: list[ScoredListing]
    model_versions: dict[str, str]
    feature_snapshot_id: str


class RecommendationMetrics:
    """Counters of one service, on its own registry (the API exposes it at /metrics)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "marketpilot_recommendation_requests", "Slates served, by strategy.", ["strategy"], registry=self.registry
        )
        self.fallbacks = Counter(
            "marketpilot_recommendation_fallbacks",
            "Slates served by the deterministic fallback ranking, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "marketpilot_recommendation_unavailable_dropped",
            "Items a model returned although the availability mask forbade them (dropped).",
            registry=self.registry,
        )
        self.latency = Histogram(
            "marketpilot_recommendation_duration_seconds",
            "Server-side time of one recommendation request.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


class _LatencyWindow:
    """The model's recent call times; its p95 predicts whether the next call fits."""

    def __init__(self, size: int = 64) -> None:
        self._times: deque[float] = deque(maxlen=size)
        self._p95 = 0.0
        self._since = 0

    def add(self, seconds: float) -> None:
        self._times.append(seconds)
        self._since += 1
        if self._since >= 8 or len(self._times) < 16:
            self._p95 = float(np.percentile(np.fromiter(self._times, dtype=np.float64), 95))
            self._since = 0

    @property
    def p95(self) -> float:
        return self._p95


class RecommendationService:
    """Serves slates from a trained `Recommender` (or the fallback), never an unavailable item."""

    def __init__(
        self,
        db: Database,
        source: str,
        *,
        features: OnlineStore | None = None,
        drift: Callable[[str], bool] | None = None,
        model_loader: ModelLoader | None = None,
        rule: SuppressionRule | None = None,
        budget_ms: float = 50.0,
        budget_probe_every: int = 16,
        refresh_interval: float = 0.0,
        slate_log: SlateLog | None = None,
        slate_policy: SlatePolicy | None = None,
        attribution_seconds: float = 1800.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.features = features
        self.drift = drift
        self.budget = budget_ms / 1000.0
        if budget_probe_every < 1:
            raise ValueError(f"budget_probe_every must be at least 1, got {budget_probe_every}")
        self.budget_probe_every = budget_probe_every
        self._budget_skips = 0
        self.availability = Availability(db, rule=rule, refresh_interval=refresh_interval, clock=clock)
        self.fallback = PopularityFallback(db, lambda: self.availability.universe, clock=clock)
        self.slates = slate_log or SlateLog(db, source)
        self.metrics = RecommendationMetrics()
        self.slate_policy = slate_policy if slate_policy is not None and slate_policy.active else None
        self.feedback: SlateFeedback | None = None
        if self.slate_policy is not None and self.slate_policy.exploration is not None:
            # Clicks, carts and purchases naming a served slate reward its listings, and each
            # slate is closed into the exploration policy after its attribution window.
            self.feedback = SlateFeedback(self.slate_policy.learn, attribution_seconds=attribution_seconds)
            feedback, av = self.feedback, self.availability
            av.interaction_listener = lambda data: feedback.interaction(data, av.universe.index)
        self._clock = clock
        self._loader = model_loader
        self._loaded: LoadedModel | None = None
        self._load_attempted = False
        self._load_lock = threading.Lock()
        self._model_latency = _LatencyWindow()
        self._history_view = recent_items_view()
        # per served model (by id): universe listings up to this index are known to its catalogue
        self._synced: dict[int, int] = {}
        self._sync_lock = threading.Lock()

    # -- model ---------------------------------------------------------------------------

    def model(self) -> LoadedModel | None:
        """The trained recommender, loaded once on first use (None: serve the fallback)."""
        if not self._load_attempted:
            with self._load_lock:
                if not self._load_attempted:
                    try:
                        self._loaded = self._loader() if self._loader is not None else None
                    except Exception:
                        log.exception("could not load the recommendation model; serving the fallback")
                        self._loaded = None
                    self._load_attempted = True
        return self._loaded

    def warm(self) -> None:
        """Do the one-time work (availability snapshot, popularity counts, model load, the
        model's own start-up work: HNSW indexes, compiled ranker) now, not in the first request."""
        self.availability.ensure_loaded()
        self.fallback.reload()
        loaded = self.model()
        if loaded is not None:
            self.sync_new_listings(loaded.model)
            prepare = getattr(loaded.model, "prepare_serving", None)
            if prepare is not None:
                log.info("model ready to serve: %s", prepare())

    def use_model(self, loaded: LoadedModel | None) -> None:
        """Swap the served model (after a promotion), or drop it (None)."""
        with self._load_lock:
            self._loaded = loaded
            self._load_attempted = True
            self._model_latency = _LatencyWindow()

    # -- requests ------------------------------------------------------------------------

    def recommend(self, request: RecommendationRequest, *, shadow: LoadedModel | None = None) -> Slate:
        """Serve one slate. With `shadow`, rank the request with that candidate model instead,
        through the same mask and guard, but serve nothing: no slate policy, no fallback
        decision, no impressions, no log, no metrics (shadow replay, :mod:`.replay`)."""
        _validate(request)
        av = self.availability
        # One-time work (model load, availability snapshot) is start-up cost, not request
        # time: it neither counts against the budget nor pushes the request to the fallback.
        loaded = self.model() if shadow is None else shadow
        av.ensure_loaded()
        started = time.perf_counter()
        av.refresh()
        u = av.universe
        seed = -1
        if request.seed_listing_id is not None:
            seed = u.index.get(request.seed_listing_id, -1)
            if seed < 0:
                raise NotFound(f"seed listing {request.seed_listing_id!r} not found")
        allowed = av.mask(request.filters)
        subject = request.user_id or request.session_id
        hidden = av.suppressed(request.user_id, subject)
        if len(hidden):
            allowed[hidden[hidden < len(allowed)]] = False
        if seed >= 0:
            allowed[seed] = False

        history, history_ms, feature_ok = self._history(request)
        if av.rule.seen_history and len(history):
            allowed[history[history < len(allowed)]] = False
        policy = self.slate_policy if shadow is None else None
        query = Query(
            k=request.k if policy is None else policy.candidates_for(request.k),
            pool=0 if policy is None else policy.pool,
            history=history,
            region=request.region,
            device=request.device,
            page=request.page,
            hour=request.hour,
            seed_item=seed,
        )
        strategy = self._strategy(loaded, feature_ok, started) if shadow is None else Strategy.MODEL
        items: IntArray
        scores: np.ndarray
        if strategy == Strategy.MODEL:
            assert loaded is not None
            try:
                items, scores = self._from_model(loaded.model, query, request, allowed)
            except Exception:
                if shadow is not None:
                    raise
                log.exception("recommendation model failed; serving the fallback")
                strategy = Strategy.MODEL_ERROR
        if strategy != Strategy.MODEL:
            self.metrics.fallbacks.labels(strategy.removeprefix("fallback_")).inc()
            items, scores = self.fallback.recommend(query, allowed)
            versions = {FALLBACK_NAME: FALLBACK_VERSION}
        else:
            assert loaded is not None
            versions = dict(loaded.versions)

        # The guard: whatever ranked, nothing outside the mask leaves this method.
        keep = (items >= 0) & (items < len(allowed))
        keep[keep] = allowed[items[keep]]
        if not keep.all():
            self.metrics.dropped.inc(int((~keep).sum()))
            items, scores = items[keep], scores[keep]
        propensities: list[float] | None = None
        explored: list[bool] | None = None
        session = None
        learnt_features = None
        if policy is not None:
            # Fairness re-ranking and exploration over the k + pool candidates (slate_policy.py).
            session = session_class(request.user_id, request.device)
            outcome = policy.apply(u, items, scores, request.k, session_class=session, now=self._clock())
            items, scores = outcome.items, outcome.scores.astype(np.float32)
            propensities, explored = outcome.propensities.tolist(), outcome.explored.tolist()
            learnt_features = outcome.features
        items, scores = items[: request.k], scores[: request.k]

        request_id = uuid.uuid4().hex
        snapshot = f"o{av.cursor}-h{history_ms}"
        ids = [u.ids[int(i)] for i in items]
        slate = Slate(
            request_id=request_id,
            strategy=strategy,
            items=[ScoredListing(lid, float(s), p) for p, (lid, s) in enumerate(zip(ids, scores.tolist(), strict=True))],
            model_versions=versions,
            feature_snapshot_id=snapshot,
        )
        if shadow is not None:
            return slate
        av.record_impressions(subject, items.tolist())
        if self.feedback is not None:
            now = self._clock()
            self.feedback.served(request_id, items, now, session or "",
                                 None if learnt_features is None else learnt_features[: len(items)])
            self.feedback.close_due(now)
        self.slates.append(
            RecommendationServed(
                request_id=request_id,
                user_id=request.user_id,
                session_id=request.session_id,
                items=ids,
                positions=list(range(len(ids))),
                scores=[float(s) for s in scores.tolist()],
                strategy=strategy,
                model_versions=versions,
                feature_snapshot_id=snapshot,
                region=request.region,
                device=request.device,
                page=request.page,
                seed_listing_id=request.seed_listing_id,
                served_at=datetime.now(UTC).isoformat(),
                propensities=propensities,
                explored=explored,
                session_class=session,
            )
        )
        self.metrics.requests.labels(strategy).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return slate

    def similar(self, listing_id: str, k: int = 20) -> Slate:
        """Listings like `listing_id` (itself excluded), servable ones only."""
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}, got {k}")
        av = self.availability
        av.refresh()
        u = av.universe
        item = u.index.get(listing_id, -1)
        if item < 0:
            raise NotFound(f"listing {listing_id!r} not found")
        allowed = av.mask()
        allowed[item] = False
        loaded = self.model()
        strategy = Strategy.MODEL_UNAVAILABLE if loaded is None else Strategy.MODEL
        items = np.empty(0, dtype=np.int64)
        scores = np.empty(0, dtype=np.float32)
        if loaded is not None:
            if self.drift is not None and self.drift(MODEL_NAME):
                strategy = Strategy.DRIFT
            else:
                catalog = loaded.model.catalog
                own = catalog.item_index.get(listing_id)
                if own is None:
                    strategy = Strategy.MODEL_UNAVAILABLE  # listing newer than the model
                else:
                    try:
                        got = loaded.model.similar(own, k, av.to_catalog(catalog, allowed))
                        items = av.universe_indices(catalog, got.items)
                        scores = got.scores
                    except Exception:
                        log.exception("similar() failed; serving the fallback")
                        strategy = Strategy.MODEL_ERROR
        if strategy != Strategy.MODEL:
            self.metrics.fallbacks.labels(strategy.removeprefix("fallback_")).inc()
            items, scores = self.fallback.similar(item, k, allowed)
            versions = {FALLBACK_NAME: FALLBACK_VERSION}
        else:
            assert loaded is not None
            versions = dict(loaded.versions)
        keep = (items >= 0) & (items < len(allowed))
        keep[keep] = allowed[items[keep]]
        items, scores = items[keep][:k], np.asarray(scores)[keep][:k]
        return Slate(
            request_id=uuid.uuid4().hex,
            strategy=strategy,
            items=[ScoredListing(u.ids[int(i)], float(s), p) for p, (i, s) in enumerate(zip(items, scores, strict=True))],
            model_versions=versions,
            feature_snapshot_id=f"o{av.cursor}",
        )

    def audit(self, window: timedelta) -> ExposureAudit:
        """Exposure per group in the slates logged over `window`, against the fairness targets,
        and the explored share of slots per session class and day against the budget cap."""
        self.slates.flush()
        self.availability.ensure_loaded()
        policy = self.slate_policy
        groups = policy.groups if policy is not None else ExposureGroups()
        targets = {} if policy is None or policy.fairness is None else {target.group: target.share for target in policy.fairness.targets}
        until = datetime.fromtimestamp(self._clock(), UTC)
        cap = None
        if policy is not None and policy.exploration is not None:
            budget = policy.budget

            def cap(session_class: str) -> float:
                return budget.limits_for(session_class).max_explored_share

        return exposure_audit(self.db, self.availability.universe, groups, targets, until=until, window=window,
                              explore_cap=cap)

    def close(self) -> None:
        self.slates.close()
        self.availability.close()

    # -- internals -----------------------------------------------------------------------

    def _strategy(self, loaded: LoadedModel | None, feature_ok: bool, started: float) -> str:
        if loaded is None:
            return Strategy.MODEL_UNAVAILABLE
        if self.drift is not None and self.drift(MODEL_NAME):
            return Strategy.DRIFT
        if not feature_ok:
            return Strategy.FEATURE_UNAVAILABLE
        if time.perf_counter() - started + self._model_latency.p95 > self.budget:
            # Every `budget_probe_every`-th skip still goes to the model, so the estimate keeps
            # being measured and the model returns once it is fast again.
            self._budget_skips += 1
            if self._budget_skips % self.budget_probe_every:
                return Strategy.LATENCY_BUDGET
        return Strategy.MODEL

    def _from_model(
        self, model: Recommender, query: Query, request: RecommendationRequest, allowed: BoolArray
    ) -> tuple[IntArray, np.ndarray]:
        av = self.availability
        catalog = model.catalog
        index = catalog.item_index
        u = av.universe
        own_history = np.fromiter(
            (index.get(u.ids[int(i)], -1) for i in query.history), dtype=np.int64, count=len(query.history)
        )
        own_query = Query(
            k=query.k,
            user=catalog.user_index.get(request.user_id, -1) if request.user_id else -1,
            history=own_history[own_history >= 0],
            region=query.region,
            device=query.device,
            page=query.page,
            hour=query.hour,
            seed_item=index.get(request.seed_listing_id, -1) if request.seed_listing_id else -1,
            pool=query.pool,
        )
        if self._synced.get(id(model)) != u.n:
            self.sync_new_listings(model)
            catalog = model.catalog
        t0 = time.perf_counter()
        got: Candidates = model.recommend(own_query, av.to_catalog(catalog, allowed))
        self._model_latency.add(time.perf_counter() - t0)
        return av.universe_indices(catalog, got.items), np.asarray(got.scores, dtype=np.float32)

    def sync_new_listings(self, model: Recommender) -> int:
        """Add listings created after the model was trained (known to availability, not to the
        model's catalogue) to a model that can take them (`add_listings`: the two-stage
        pipeline embeds their text and inserts them into its HNSW index), so the model can
        serve them at once instead of only the fallback ranking. Their text is read from the
        listings table. Returns how many were added. Runs when the universe has grown since the
        last check (the first check looks at every listing once)."""
        add = getattr(model, "add_listings", None)
        av = self.availability
        av.ensure_loaded()
        u = av.universe
        if add is None:
            self._synced[id(model)] = u.n
            return 0
        with self._sync_lock:
            start = self._synced.get(id(model), 0)
            n = u.n
            if start >= n:
                return 0
            known = model.catalog.item_index
            fresh = [lid for lid in u.ids[start:n] if lid not in known]
            added = 0
            if fresh:
                try:
                    added = self._add_listings(add, fresh)
                except Exception:
                    log.exception("could not add %d new listings to the served model", len(fresh))
            self._synced[id(model)] = n
            return added

    def _add_listings(self, add: Callable[..., Any], ids: list[str]) -> int:
        rows: list[Any] = []
        with self.db.read() as s:
            for lo in range(0, len(ids), 500):
                rows += s.execute(select(t.Listing.id, t.Listing.title, t.Listing.category_path, t.Listing.attributes)
                                  .where(t.Listing.id.in_(ids[lo:lo + 500]))).all()
        if not rows:
            return 0
        got = add([r.id for r in rows], [listing_text(r.title, r.category_path, r.attributes) for r in rows],
                  categories=[r.category_path or None for r in rows])
        log.info("added %d listings created after training to the served model", len(got))
        return len(got)

    def _history(self, request: RecommendationRequest) -> tuple[IntArray, int, bool]:
        """(universe indices of recent items, most recent LAST; feature event time ms; ok)."""
        subject = request.user_id or request.session_id
        if subject is None or self.features is None:
            return np.empty(0, dtype=np.int64), 0, True
        try:
            batch = self.features.read(self._history_view, [subject], ["recent_items"])
        except Exception:
            log.warning("recent-items feature read failed", exc_info=True)
            return np.empty(0, dtype=np.int64), 0, False
        if not bool(batch.present[0]):
            return np.empty(0, dtype=np.int64), 0, True
        index = self.availability.universe.index
        newest_first = [index.get(str(x), -1) for x in batch.ids("recent_items", 0)][:HISTORY_LENGTH]
        found = np.asarray([i for i in reversed(newest_first) if i >= 0], dtype=np.int64)
        return found, int(batch.event_time[0]), True


def _validate(request: RecommendationRequest) -> None:
    if not 1 <= request.k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}, got {request.k}")
    if request.user_id is None and request.session_id is None:
        raise InvalidInput("give a user_id or an anonymous session_id")
    f = request.filters
    if f.min_price is not None and f.max_price is not None and f.min_price > f.max_price:
        raise InvalidInput(f"min_price {f.min_price} is above max_price {f.max_price}")
    if request.hour is not None and not 0 <= request.hour <= 23:
        raise InvalidInput(f"hour must be between 0 and 23, got {request.hour}")


def load_champion(settings: Settings) -> LoadedModel | None:
    """The registered ``recommend`` champion, or None when there is none (serve the fallback).

    An embedded home without an MLflow store has no model: answered without importing
    MLflow (which takes seconds). Any registry error also yields None, logged.
    """
    from marketpilot.platform.models.store import store_location

    location = store_location(settings)
    if location.is_sqlite and not (settings.home / "mlflow.db").exists():
        return None
    from marketpilot.platform.models.registry import ModelNotFound, ModelRegistry

    try:
        with ModelRegistry.from_settings(settings) as registry:
            loaded = registry.load_version(MODEL_NAME)
    except ModelNotFound:
        return None
    model: object = loaded.model
    from marketpilot.platform.models.artifacts import ArrayBundle

    if isinstance(model, ArrayBundle):  # the two-stage pipeline is stored as arrays (no pickle)
        from marketpilot.recommend.pipeline import TwoStagePipeline

        model = TwoStagePipeline.from_bundle(model)
    if not isinstance(model, Recommender):
        log.error("registered %r champion is a %s, not a Recommender", MODEL_NAME, type(model).__name__)
        return None
    return LoadedModel(model=model, versions={MODEL_NAME: str(loaded.version.version)})
