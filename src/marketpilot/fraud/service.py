"""The fraud request path: features, model, decision, audit row, review queue.

``FraudService.score(request)`` is synchronous and in-process: it validates the request,
computes its features from the in-memory :class:`~marketpilot.fraud.features.FeatureState`
(numpy, no SQL), scores them, compares with the thresholds chosen on the validation
window and returns a :class:`~marketpilot.fraud.base.FraudDecision`. The order workflow
calls it directly; ``POST /v1/fraud/score`` and the event consumer call
:meth:`FraudService.decide`, which also records the decision (and opens a review).

Strategies, in order (a decision always says which one decided, never fails open silently):

1. ``model``: the registered ``fraud`` model (champion) is loaded and no drift alarm is
   active for it: calibrated blend, thresholds of the model, LightGBM contributions as
   reasons.
2. ``fallback`` with the model's IsolationForest: the supervised model failed or drift is
   active; the anomaly score decides against its own validation-window threshold.
3. ``fallback`` without any model (nothing registered yet): the decision is ``review``
   (never ``approve``), so a human looks at every payment until a model exists.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
from pydantic import BaseModel
from sqlalchemy import select, update

from marketpilot.domain.errors import Conflict, InvalidInput, NotFound
from marketpilot.fraud.base import Action, FraudDecision, FraudRequest, Reason, Strategy, validate_request
from marketpilot.fraud.features import FEATURES, REPUTATION_KINDS, FeatureState
from marketpilot.fraud.redis_state import RedisFeatureState
from marketpilot.fraud.tables import FraudDecisionRow, ReputationEntry
from marketpilot.marketplace.page import Page
from marketpilot.platform.config import Settings
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from marketpilot.fraud.model import FraudModel
    from marketpilot.platform.events.cloudevent import CloudEvent
    from marketpilot.platform.models.registry import ModelRegistry
    from marketpilot.platform.monitoring.drift_service import DriftService

__all__ = ["MODEL_NAME", "FraudService", "ReviewItem", "load_champion"]

MODEL_NAME = "fraud"
TOP_REASONS = 3
PRIME_WINDOW = timedelta(days=30)  # history replayed at start-up (velocity, accounts, rings)


class ReviewItem(BaseModel):
    """One decision in the review queue (or closed, with the analyst's label)."""

    id: int
    transaction_id: str
    user_id: str
    order_id: str | None
    action: str
    score: float
    threshold: float
    model_version: str
    strategy: str
    reasons: list[dict[str, Any]]
    status: str
    label: int | None
    decided_at: datetime
    reviewed_at: datetime | None = None
    reviewer: str | None = None
    note: str | None = None


class FraudService:
    def __init__(
        self,
        db: Database,
        *,
        drift: DriftService | None = None,
        model_name: str = MODEL_NAME,
        model_loader: Callable[[], tuple[FraudModel, str] | None] | None = None,
        source: str = "marketpilot",
        state: FeatureState | RedisFeatureState | None = None,
    ) -> None:
        self.db = db
        self.source = source  # CloudEvents source of the decision events
        self.drift = drift
        self._loader = model_loader  # tried once, on the first decision without a model
        self.model_name = model_name
        self.state = FeatureState() if state is None else state
        self._lock = threading.Lock()
        self._model: FraudModel | None = None
        self._version = "none"
        self._row = np.empty(len(FEATURES))
        self.load_error: str | None = None

    # -- models ---------------------------------------------------------------------------

    def install(self, model: FraudModel, version: str) -> None:
        """Serve `model` (a fitted :class:`FraudModel`) as `version` from now on."""
        with self._lock:
            self._model, self._version, self.load_error = model, version, None

    def load_from_registry(self, registry: ModelRegistry, ref: int | str = "champion") -> str | None:
        """Serve the registry's `ref` version of the fraud model; on failure keep serving
        what is loaded (or the fallback) and remember why. Returns the version served."""
        from marketpilot.fraud.model import FraudModel

        try:
            version = registry.get(self.model_name, ref)
            model = registry.load(self.model_name, version.version)
            if not isinstance(model, FraudModel):
                raise TypeError(f"{self.model_name} v{version.version} is a {type(model).__name__}, not a FraudModel")
        except Exception as exc:  # noqa: BLE001 - any failure means: fallback, with the reason recorded
            self.load_error = f"{type(exc).__name__}: {exc}"
            return None
        self.install(model, f"{self.model_name}/{version.version}")
        return self._version

    @property
    def model_version(self) -> str:
        return self._version

    # -- state ----------------------------------------------------------------------------

    def prime(self, *, now: datetime | None = None, window: timedelta = PRIME_WINDOW) -> int:
        """Load accounts, reputation lists and the last `window` of payment attempts (with
        their labels) into the feature state; returns attempts replayed.

        A Redis state is shared and outlives the process: only the first replica to start
        against an empty one replays the history (the others find it primed)."""
        if isinstance(self.state, RedisFeatureState) and not self.state.claim_priming():
            return 0
        since = (now or datetime.now(UTC)) - window
        with self.db.read() as s:
            users = list(s.execute(select(t.User.id, t.User.region, t.User.created_at)))
            reputation = list(s.execute(select(ReputationEntry.kind, ReputationEntry.value)))
            txns = list(s.scalars(select(t.Transaction).where(t.Transaction.timestamp >= since)
                                  .order_by(t.Transaction.timestamp, t.Transaction.id)))
        with self._lock:
            self.state.add_users(users)
            for kind in REPUTATION_KINDS:
                self.state.add_reputation(kind, [v for k, v in reputation if k == kind])
            for row in txns:
                request = _request_of(row)
                self.state.observe(request)
                if row.label:
                    self.state.label(row.id, True)
        return len(txns)

    def import_reputation(self, kind: str, values: Iterable[str], *, source: str = "") -> int:
        """Add values to a reputation list (stored, and live at once); returns new entries."""
        if kind not in REPUTATION_KINDS:
            raise InvalidInput(f"unknown reputation list {kind!r}; expected one of {', '.join(REPUTATION_KINDS)}")
        clean = sorted({v.strip().lower() if kind == "email_domain" else v.strip() for v in values if v and v.strip()})
        with self.db.session() as s:
            have = set(s.scalars(select(ReputationEntry.value).where(ReputationEntry.kind == kind)))
            new = [v for v in clean if v not in have]
            s.add_all(ReputationEntry(kind=kind, value=v, source=source, added_at=utcnow()) for v in new)
        with self._lock:
            self.state.add_reputation(kind, clean)
        return len(new)

    # -- the request path -------------------------------------------------------------------

    def score(self, request: FraudRequest) -> FraudDecision:
        """Decide one payment attempt (validated; 422-style :class:`InvalidInput` on bad input)."""
        validate_request(request)
        if isinstance(self.state, RedisFeatureState):
            # atomic in Redis and a thread-safe client: no process lock around the round trip
            x = self.state.vector_then_observe(request)
            with self._lock:
                return self._decide(request.transaction_id, x)
        with self._lock:
            x = self.state.vector_then_observe(request, out=self._row)
            return self._decide(request.transaction_id, x)

    def warm(self) -> None:
        """Load the registered champion now, not in the first decision."""
        with self._lock:
            if self._model is None:
                self._load_once()

    def _load_once(self) -> None:
        loader, self._loader = self._loader, None
        if loader is None:
            return
        try:
            found = loader()
        except Exception as exc:  # noqa: BLE001 - the fallback decides and the reason is kept
            self.load_error = f"{type(exc).__name__}: {exc}"
            return
        if found is not None:
            self._model, self._version = found

    def _decide(self, transaction_id: str, x: np.ndarray) -> FraudDecision:
        if self._model is None and self._loader is not None:
            self._load_once()
        model = self._model
        if model is None:
            return FraudDecision(
                transaction_id=transaction_id, action=Action.REVIEW, score=math.nan, threshold=math.nan,
                block_threshold=math.nan, model_version="none", strategy=Strategy.FALLBACK,
                fallback_reason=f"no {self.model_name} model is loaded"
                + (f" ({self.load_error})" if self.load_error else "") + "; every payment goes to review",
            )
        reason = None
        if self.drift is not None and self.drift.is_active(self.model_name):
            reason = f"drift detected on {self.model_name}: the anomaly model decides until it is retrained"
        else:
            try:
                return self._model_decision(model, transaction_id, x)
            except Exception as exc:  # noqa: BLE001 - the fallback decides and says why
                reason = f"model failed: {type(exc).__name__}: {exc}"
        return self._fallback_decision(model, transaction_id, x, reason)

    def _model_decision(self, model: FraudModel, transaction_id: str, x: np.ndarray) -> FraudDecision:
        raw, contrib, anomaly = model.explain_one(x)
        score = float(np.interp(raw, model.calib_x_, model.calib_y_))
        action = (Action.BLOCK if raw >= model.raw_block_threshold_ else
                  Action.REVIEW if raw >= model.raw_threshold_ else Action.APPROVE)
        names = model.contribution_names
        values = [*x.tolist(), anomaly] if len(names) > len(x) else x.tolist()
        top = np.argsort(-contrib)[:TOP_REASONS]
        reasons = tuple(Reason(names[i], _finite(values[i]), round(float(contrib[i]), 4)) for i in top if contrib[i] > 0)
        return FraudDecision(
            transaction_id=transaction_id, action=action, score=score, threshold=model.threshold_,
            block_threshold=model.block_threshold_, model_version=self._version, strategy=Strategy.MODEL,
            reasons=reasons,
        )

    def _fallback_decision(self, model: FraudModel, transaction_id: str, x: np.ndarray, why: str) -> FraudDecision:
        row = x.reshape(1, -1)
        score = float(model.anomaly(row)[0])
        action = (Action.BLOCK if score >= model.fallback_block_threshold_ else
                  Action.REVIEW if score >= model.fallback_threshold_ else Action.APPROVE)
        z = (np.clip(model._fill(row), model.clip_lo_, model.clip_hi_) - model.mean_) / model.scale_
        top = np.argsort(-np.abs(z[0]))[:TOP_REASONS]
        reasons = tuple(Reason(FEATURES[i] if i < len(FEATURES) else f"f{i}", _finite(x[i]), round(float(z[0, i]), 4))
                        for i in top)
        return FraudDecision(
            transaction_id=transaction_id, action=action, score=score, threshold=model.fallback_threshold_,
            block_threshold=model.fallback_block_threshold_,
            model_version=self._version.replace(self.model_name, "isolation_forest", 1),
            strategy=Strategy.FALLBACK, reasons=reasons, fallback_reason=why,
        )

    # -- decisions on record, the review queue ------------------------------------------------

    def on_event(self, event: CloudEvent, session: Session) -> None:
        """Event-bus handler: decide an OrderPlaced / PaymentAuthorized and publish the verdict."""
        from marketpilot.fraud.consumer import FraudConsumer

        FraudConsumer(self, self.source)(event, session)

    def decide(self, request: FraudRequest, session: Session | None = None) -> FraudDecision:
        """Score and record the decision (idempotent per transaction id: a repeated request
        returns the recorded decision). With `session`, writes inside the caller's transaction."""
        validate_request(request)
        if session is not None:
            return self.decide_in(session, request)[0]
        with self.db.session() as s:
            return self.decide_in(s, request)[0]

    def decide_in(self, s: Session, request: FraudRequest) -> tuple[FraudDecision, bool]:
        """(decision, newly made) inside the caller's transaction."""
        existing = s.scalar(select(FraudDecisionRow).where(FraudDecisionRow.transaction_id == request.transaction_id))
        if existing is not None:
            return _decision_of(existing), False
        decision = self.score(request)
        s.add(FraudDecisionRow(
            transaction_id=request.transaction_id, user_id=request.user_id, order_id=request.order_id,
            action=decision.action.value, score=_finite(decision.score) or 0.0,
            threshold=_finite(decision.threshold) or 0.0, block_threshold=_finite(decision.block_threshold) or 0.0,
            model_version=decision.model_version, strategy=decision.strategy.value,
            reasons=[msgspec.to_builtins(r) for r in decision.reasons], request=msgspec.to_builtins(request),
            status="open" if decision.action is Action.REVIEW else "closed", decided_at=utcnow(),
        ))
        if s.get(t.Transaction, request.transaction_id) is None:
            s.add(_transaction_of(request))
        s.flush()
        return decision, True

    def reviews(self, *, limit: int = 50, cursor: int | None = None, status: str = "open") -> Page[ReviewItem]:
        """The queue (``status="open"``: decisions sent to review, oldest first) or closed decisions."""
        q = select(FraudDecisionRow).where(FraudDecisionRow.status == status).order_by(FraudDecisionRow.id)
        if cursor is not None:
            q = q.where(FraudDecisionRow.id > cursor)
        with self.db.read() as s:
            rows = list(s.scalars(q.limit(limit + 1)))
        items = [_item(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)

    def review(self, decision_id: int, *, fraud: bool, reviewer: str, note: str | None = None) -> ReviewItem:
        """An analyst's verdict: closes the review and labels the transaction for training."""
        with self.db.session() as s:
            row = s.get(FraudDecisionRow, decision_id)
            if row is None:
                raise NotFound(f"fraud decision {decision_id} not found")
            if row.status == "closed" and row.label is not None:
                raise Conflict(f"fraud decision {decision_id} was already reviewed (label {row.label})")
            row.status, row.label, row.reviewer, row.note, row.reviewed_at = (
                "closed", int(fraud), reviewer, note, utcnow())
            s.execute(update(t.Transaction).where(t.Transaction.id == row.transaction_id).values(label=int(fraud)))
            s.flush()
            item = _item(row)
        with self._lock:
            self.state.label(item.transaction_id, fraud, known_at=datetime.now(UTC))
        return item


def load_champion(settings: Settings, name: str = MODEL_NAME) -> tuple[FraudModel, str] | None:
    """The registered champion of `name` and its version label, or None when there is none.
    An embedded home without an MLflow store has no model: answered without importing MLflow."""
    from marketpilot.platform.models.store import store_location

    if store_location(settings).is_sqlite and not (settings.home / "mlflow.db").exists():
        return None
    from marketpilot.fraud.model import FraudModel
    from marketpilot.platform.models.registry import ModelNotFound, ModelRegistry

    try:
        with ModelRegistry.from_settings(settings) as registry:
            loaded = registry.load_version(name)
    except ModelNotFound:
        return None
    if not isinstance(loaded.model, FraudModel):
        raise TypeError(f"registered {name!r} champion is a {type(loaded.model).__name__}, not a FraudModel")
    return loaded.model, f"{name}/{loaded.version.version}"


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _request_of(row: t.Transaction) -> FraudRequest:
    return FraudRequest(
        transaction_id=row.id, user_id=row.user_id, amount_minor=int(row.amount_minor), currency=row.currency,
        instrument_fingerprint=row.instrument_fingerprint or None, device_id=row.device_id, ip=row.ip,
        email_domain=row.email_domain, ip_region=row.ip_region, shipping_region=row.shipping_region,
        order_id=row.order_id, timestamp=row.timestamp,
    )


def _transaction_of(r: FraudRequest) -> t.Transaction:
    return t.Transaction(
        id=r.transaction_id, user_id=r.user_id, order_id=r.order_id, amount_minor=r.amount_minor, currency=r.currency,
        instrument_fingerprint=r.instrument_fingerprint or "", device_id=r.device_id, ip=r.ip,
        email_domain=r.email_domain, ip_region=r.ip_region, shipping_region=r.shipping_region, timestamp=r.at(),
    )


def _decision_of(row: FraudDecisionRow) -> FraudDecision:
    return FraudDecision(
        transaction_id=row.transaction_id, action=Action(row.action), score=row.score, threshold=row.threshold,
        block_threshold=row.block_threshold, model_version=row.model_version, strategy=Strategy(row.strategy),
        reasons=tuple(Reason(r["feature"], r.get("value"), r["contribution"]) for r in row.reasons),
    )


def _item(row: FraudDecisionRow) -> ReviewItem:
    return ReviewItem(
        id=row.id, transaction_id=row.transaction_id, user_id=row.user_id, order_id=row.order_id, action=row.action,
        score=row.score, threshold=row.threshold, model_version=row.model_version, strategy=row.strategy,
        reasons=list(row.reasons), status=row.status, label=row.label, decided_at=row.decided_at,
        reviewed_at=row.reviewed_at, reviewer=row.reviewer, note=row.note,
    )
