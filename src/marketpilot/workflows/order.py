"""The order processing saga, a durable DBOS workflow started by ``OrderPlaced``::

    load -> fraud check [-> manual review] -> reserve stock -> authorise -> capture
         -> shipping label -> fulfil (stock sold) -> notify (e-mail + webhook via the outbox)

Each arrow is a recorded step (a ``workflow_steps`` row and its events). DBOS checkpoints
fewer: an approved order that ships runs 2 DBOS steps (``STEPS``): ``load`` (load, fraud
check and reservation, one transaction) and ``pay_and_ship`` (authorise, capture and label
calls, then one transaction that records them, sells the stock, notifies and completes the
run). Every checkpoint costs system-database writes and every transaction a turn at the
embedded database's single writer, so steps that need not be separate checkpoints are not.
A worker killed at any point is resumed by the next one from the last checkpoint, and the
interrupted step runs again. Every step is therefore safe to run twice:

- external calls carry an idempotency key made of the run id and the operation, so the
  provider answers a repeated call with the first call's result (no second capture/label);
- database steps record themselves (``workflow_steps``, unique per run/step/attempt) in the
  transaction of their effect and events, and do nothing when they find their record;
- the reservation finds its checkout locks again by holder before taking new ones.

Transient provider failures (5xx, timeouts, open breaker) are retried with exponential
backoff (durable sleeps between attempts, each attempt its own step) until the call
succeeds or the run has waited `RetryPolicy.max_wait`. An attempt of ``pay_and_ship`` that
fails records what its calls did and the failure, and hands what was done (`Charged`) to the
next attempt, which does not call again what succeeded. A decline or that exhaustion is
terminal and compensates what was done, newest first: cancel the label, refund or void the
payment, release the stock.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dbos import DBOS
from sqlalchemy import select, update

from marketpilot.domain.entities import CheckoutLockIn
from marketpilot.domain.errors import InsufficientStock, NotFound
from marketpilot.domain.events import PaymentAuthorized, PaymentFailed, ShipmentCreated
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow
from marketpilot.workflows import history
from marketpilot.workflows.base import FraudVerdict, OrderFacts, OrderLineFacts
from marketpilot.workflows.environment import current as _env
from marketpilot.workflows.events import ManualTaskOpened, OrderNotification
from marketpilot.workflows.history import StepClock, StepRecord, boundary
from marketpilot.workflows.integrations.carrier import Label
from marketpilot.workflows.integrations.errors import Declined, ProviderError, Unavailable
from marketpilot.workflows.integrations.payments import Payment
from marketpilot.workflows.policy import RESERVATION_TTL_SECONDS
from marketpilot.workflows.tables import WorkflowRun, WorkflowStep, WorkflowTask

__all__ = [
    "KIND",
    "ORDER_WORKFLOW",
    "REVIEW_TOPIC",
    "compensate_order_workflow",
    "order_workflow",
    "order_workflow_id",
]

log = logging.getLogger(__name__)

KIND = "order"
ORDER_WORKFLOW = "marketpilot.workflows.order"
COMPENSATE_WORKFLOW = "marketpilot.workflows.order.compensate"
REVIEW_TOPIC = "review"
STEPS = ("load", "ship")
"""The checkpointed steps of an approved run that ships, in order, by the name their step
boundaries carry (``finish`` ends the others). Step records are finer: ``load`` records
``load``, ``fraud`` and, for an approved order, ``reserve``; ``ship`` (DBOS step
``pay_and_ship``) calls authorise, capture and label, then records ``authorize``,
``capture``, ``label``, ``fulfil`` and ``notify`` and completes the run in one transaction."""
GRAMS_PER_UNIT = 500
CANCEL_GRACE_SECONDS = 5.0

T = TypeVar("T")


def order_workflow_id(order_id: str) -> str:
    return f"order:{order_id}"


class GaveUp(Exception):
    """An external call kept failing transiently for longer than the retry policy allows."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: gave up after waiting: {message}")
        self.operation, self.message = operation, message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.operation, self.message))


@dataclass(frozen=True, slots=True)
class Reservation:
    lock_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the load step checkpoints: the order, the fraud verdict and, for an approved
    order, its reservation (None when out of stock or not approved)."""

    facts: OrderFacts
    verdict: FraudVerdict
    reservation: Reservation | None = None


@dataclass(frozen=True, slots=True)
class Charged:
    """What attempts of ``pay_and_ship`` have done and recorded: the authorised payment, its
    capture and the label. The next attempt starts from it, and compensation undoes it."""

    payment: Payment | None = None
    captured: Payment | None = None
    label: Label | None = None


class Halted(Exception):
    """An attempt of ``pay_and_ship`` stopped at a provider's `error` (or the run gave up
    retrying it) after doing and recording `charged`."""

    def __init__(self, error: Exception, charged: Charged) -> None:
        super().__init__(str(error))
        self.error, self.charged = error, charged

    def __reduce__(self) -> tuple[object, ...]:  # DBOS pickles a step's error with its result
        return (type(self), (self.error, self.charged))


@dataclass(frozen=True, slots=True)
class Progress:
    """What a run has done that compensation may have to undo."""

    reservation: Reservation | None = None
    payment_id: str | None = None
    captured_minor: int = 0
    label_id: str | None = None


# -- the workflow ----------------------------------------------------------------------------


@DBOS.workflow(name=ORDER_WORKFLOW)
def order_workflow(order_id: str) -> dict[str, Any]:
    workflow_id = DBOS.workflow_id or order_workflow_id(order_id)
    loaded = _load_step(workflow_id, order_id)
    if loaded is None:
        return {"order_id": order_id, "state": "failed", "outcome": "order_missing"}
    facts, verdict = loaded.facts, loaded.verdict
    human_steps = 0
    if verdict.decision == "review":
        _open_review_step(workflow_id, facts, verdict)
        answer = DBOS.recv(REVIEW_TOPIC, timeout_seconds=_env().review_timeout)
        human_steps = 1
        approved = answer == "approve"
        _close_review_step(workflow_id, "approve" if approved else str(answer or "timeout"))
        if not approved:
            reason = "manual review timed out" if answer is None else f"manual review: {answer}"
            return _finish_step(workflow_id, facts, "rejected", "fraud_review_rejected", reason, Progress(), human_steps)
    elif verdict.decision == "block":
        return _finish_step(workflow_id, facts, "rejected", "fraud_block", verdict.reason, Progress(), human_steps)

    # An approved order was reserved by the load step; an order approved by a reviewer
    # reserves only now (no stock is held while a run waits on a person).
    reservation = loaded.reservation if verdict.decision == "approve" else _reserve_step(workflow_id, facts)
    if reservation is None:
        return _finish_step(workflow_id, facts, "failed", "out_of_stock", "not enough stock", Progress(), human_steps)
    try:
        return _pay_and_ship(workflow_id, facts, reservation)
    except Halted as halted:
        charged = halted.charged
        progress = Progress(
            reservation=reservation,
            payment_id=charged.payment.id if charged.payment is not None else None,
            captured_minor=charged.captured.captured_minor if charged.captured is not None else 0,
            label_id=charged.label.id if charged.label is not None else None,
        )
        _compensate(workflow_id, facts, progress)
        return _finish_step(workflow_id, facts, "failed", _failure_outcome(halted.error), str(halted.error), progress,
                            human_steps, compensated=True)


@DBOS.workflow(name=COMPENSATE_WORKFLOW)
def compensate_order_workflow(cancelled_workflow_id: str) -> dict[str, Any]:
    """Undo what a cancelled order run did, read from its step records (operator cancel)."""
    workflow_id = cancelled_workflow_id
    # A step of the cancelled run may still be finishing its call (cancellation takes effect
    # at the next step); wait out the longest call timeout before reading what it did.
    DBOS.sleep(CANCEL_GRACE_SECONDS)
    facts, progress = _progress_step(workflow_id)
    if facts is None:
        return {"workflow_id": workflow_id, "state": "cancelled", "outcome": "nothing_to_undo"}
    # The records may not show everything: a worker killed inside ``pay_and_ship`` after a
    # provider call and before its record, then cancelled before any worker recovered it, has
    # charged or bought a label that no record names. The providers' own state says.
    found = _external(_discover_step, workflow_id, facts.order_id)
    _compensate(workflow_id, facts, _reconciled(progress, found))
    return _finish_step(workflow_id, facts, "cancelled", "operator_cancelled", "cancelled by an operator", progress, 0,
                        compensated=True)


@dataclass(frozen=True, slots=True)
class Found:
    """What the providers report for an order's reference: its payment intents and labels."""

    payments: tuple[Payment, ...]
    labels: tuple[Label, ...]


def _reconciled(progress: Progress, found: Found) -> Progress:
    """`progress` with its payment and label as the providers report them: the intent still
    to void (authorised) or refund (captured, not all refunded yet), the label still to
    cancel; none when the provider shows nothing left to undo (or nothing done)."""
    payment_id, captured = None, 0
    for payment in found.payments:
        if payment.status == "requires_capture":
            payment_id, captured = payment.id, 0
        elif payment.captured_minor > payment.refunded_minor:
            payment_id, captured = payment.id, payment.captured_minor - payment.refunded_minor
        else:
            continue
        break
    live = [label.id for label in found.labels if label.status != "cancelled"]
    if len(found.payments) > 1 or len(live) > 1:  # one run per order, one key per call: not expected
        log.warning("order reference has %d payment intents and %d live labels; undoing the first of each",
                    len(found.payments), len(live))
    return Progress(reservation=progress.reservation, payment_id=payment_id, captured_minor=captured,
                    label_id=live[0] if live else None)


def _failure_outcome(exc: BaseException) -> str:
    operation = getattr(exc, "operation", "call")
    if isinstance(exc, Declined):
        return f"{operation}_declined"
    if isinstance(exc, GaveUp):
        return f"{operation}_unavailable"
    return f"{operation}_error"


def _external(step: Callable[..., T], workflow_id: str, *args: Any) -> T:
    """Call an external step until it succeeds, sleeping durably with backoff between
    attempts on transient failures; raise :class:`GaveUp` past the policy's total wait."""
    attempt, waited = 0, 0.0
    while True:
        try:
            return step(workflow_id, *args, attempt)
        except Unavailable as exc:
            waited = _back_off(exc, attempt, waited)
            attempt += 1


def _pay_and_ship(workflow_id: str, facts: OrderFacts, reservation: Reservation) -> dict[str, Any]:
    """``pay_and_ship`` until it succeeds, retried like `_external` on transient failures,
    each attempt starting from what the previous ones did; :class:`Halted` when it cannot."""
    charged, attempt, waited = Charged(), 0, 0.0
    while True:
        try:
            return _pay_and_ship_step(workflow_id, facts, reservation, charged, attempt)
        except Halted as halted:
            charged = halted.charged
            if not isinstance(halted.error, Unavailable):
                raise
            try:
                waited = _back_off(halted.error, attempt, waited)
            except GaveUp as exc:
                raise Halted(exc, charged) from None
            attempt += 1


def _back_off(exc: Unavailable, attempt: int, waited: float) -> float:
    """Sleep durably before the next attempt after `exc`; the total waited then. Past the
    retry policy's longest wait, :class:`GaveUp` instead."""
    policy = _env().retry
    if waited >= policy.max_wait:
        raise GaveUp(exc.operation, exc.message) from None
    delay = policy.delay(attempt)
    DBOS.sleep(delay)
    return waited + delay


def _compensate(workflow_id: str, facts: OrderFacts, progress: Progress) -> None:
    """Undo in reverse order; each undo is itself retried like any external call."""
    if progress.label_id is not None:
        _external(_cancel_label_step, workflow_id, progress.label_id)
    if progress.payment_id is not None:
        if progress.captured_minor:
            _external(_refund_step, workflow_id, progress.payment_id, progress.captured_minor)
        else:
            _external(_void_step, workflow_id, progress.payment_id)
    if progress.reservation is not None:
        _release_step(workflow_id, progress.reservation)


# -- database steps --------------------------------------------------------------------------


def _record(workflow_id: str, step: str, status: str, clock: StepClock, *, attempt: int = 0,
            detail: dict[str, Any] | None = None, retries: int = 0, compensations: int = 0) -> None:
    env = _env()
    with env.db.session() as s:
        history.record_step(
            s, env.source, workflow_id=workflow_id, kind=KIND, step=step, status=status, clock=clock,
            attempt=attempt, detail=detail, retries=retries, compensations=compensations,
        )


_ORDERS: Any = t.Order.__table__  # Core: no ORM synchronisation of a session that holds no orders


def _set_order_status(session: Any, order_id: str, status: str) -> None:
    session.execute(update(_ORDERS).where(_ORDERS.c.id == order_id).values(status=status, updated_at=utcnow()))


@DBOS.step(name="marketpilot.order.load")
def _load_step(workflow_id: str, order_id: str) -> Loaded | None:
    """Read the order, ask the fraud check and, if it approves, reserve the stock; then open
    the run and record what was done (steps ``load``, ``fraud`` and ``reserve``) in one
    transaction. Safe to run again: the fraud check is pure or answers a known order with
    its stored decision, and the reservation finds its locks by holder before locking."""
    env = _env()
    clock = StepClock()
    boundary(workflow_id, "load", "start")
    with env.db.read() as s:
        order = s.get(t.Order, order_id)
        if order is not None:
            lines = s.scalars(select(t.OrderLine).where(t.OrderLine.order_id == order_id).order_by(t.OrderLine.id))
            seller = s.get(t.Seller, order.seller_id)
            facts = OrderFacts(
                order_id=order.id, user_id=order.user_id, seller_id=order.seller_id, total_minor=order.total_minor,
                currency=order.currency, shipping_region=order.shipping_region,
                origin_region=seller.country if seller is not None else None,
                lines=tuple(OrderLineFacts(ln.listing_id, ln.quantity, ln.unit_price_minor) for ln in lines),
            )
            existing = _existing_locks(s, workflow_id, facts)
    if order is None:
        with env.db.session() as s:
            history.open_run(s, env.source, workflow_id=workflow_id, kind=KIND, subject_id=order_id, seller_id=None)
            history.set_state(s, env.source, workflow_id, "failed", outcome="order_missing",
                              reason=f"order {order_id!r} does not exist")
        boundary(workflow_id, "load", "done")
        return None
    loaded_ms = clock.elapsed_ms
    fraud_clock = StepClock()
    verdict = env.fraud.check(facts)
    fraud_ms = fraud_clock.elapsed_ms
    reserve_clock = StepClock()
    lock_ids: list[str] | None = None
    error: str | None = None
    # One transaction takes the locks and records what was done: a run killed before the
    # commit holds no stock and has no record; after it, a replay finds both. (Core
    # connections in the hot transactions: see Database.write.)
    with env.db.write() as s:
        if verdict.decision == "approve":
            lock_ids, error = _take_locks(s, workflow_id, facts, existing)
            boundary(workflow_id, "load", "reserved")
        history.open_run(s, env.source, workflow_id=workflow_id, kind=KIND, subject_id=order_id,
                         seller_id=facts.seller_id)
        records = [
            StepRecord("load", "ok", clock, detail={"lines": len(facts.lines), "total_minor": facts.total_minor},
                       elapsed_ms=loaded_ms),
            StepRecord("fraud", "ok", fraud_clock, detail={"decision": verdict.decision, "reason": verdict.reason,
                                                           "score": verdict.score, "reasons": list(verdict.reasons)},
                       elapsed_ms=fraud_ms),
        ]
        if lock_ids is not None:
            records.append(_reservation_record(reserve_clock, lock_ids, error))
        written = history.record_steps(s, env.source, workflow_id=workflow_id, kind=KIND, records=records)
        if error is not None and written[-1]:
            _set_order_status(s, facts.order_id, "failed")
    boundary(workflow_id, "load", "done")
    return Loaded(facts, verdict, Reservation(tuple(lock_ids)) if lock_ids is not None and error is None else None)


@DBOS.step(name="marketpilot.order.review_open")
def _open_review_step(workflow_id: str, facts: OrderFacts, verdict: FraudVerdict) -> None:
    env = _env()
    clock = StepClock()
    summary = (f"order {facts.order_id} of buyer {facts.user_id}: {facts.total_minor} {facts.currency} minor units, "
               f"{facts.units} units; fraud rules: {verdict.reason}")
    with env.db.session() as s:
        if history.recorded(s, workflow_id, "review_open") is not None:
            return
        s.add(WorkflowTask(workflow_id=workflow_id, kind="fraud_review", queue="fraud", priority="high",
                           summary=summary, status="open", created_at=utcnow()))
        history.record_step(
            s, env.source, workflow_id=workflow_id, kind=KIND, step="review_open", status="ok", clock=clock,
            events=(ManualTaskOpened(workflow_id=workflow_id, kind="fraud_review", queue="fraud", priority="high",
                                     summary=summary),),
        )
        history.set_state(s, env.source, workflow_id, "waiting", outcome="fraud_review", reason=verdict.reason)


@DBOS.step(name="marketpilot.order.review_close")
def _close_review_step(workflow_id: str, decision: str) -> None:
    env = _env()
    clock = StepClock()
    with env.db.session() as s:
        if history.recorded(s, workflow_id, "review_close") is not None:
            return
        s.execute(update(WorkflowTask).where(WorkflowTask.workflow_id == workflow_id, WorkflowTask.kind == "fraud_review")
                  .values(status="closed", decision=decision[:32], closed_at=utcnow()))
        history.record_step(s, env.source, workflow_id=workflow_id, kind=KIND, step="review_close", status="ok",
                            clock=clock, detail={"decision": decision})
        history.set_state(s, env.source, workflow_id, "running", human_steps=1)


def _holder(workflow_id: str, index: int) -> str:
    """A checkout-lock holder unique to (run, line) and within the 64-character id limit."""
    return "wf-" + hashlib.sha256(f"{workflow_id}#{index}".encode()).hexdigest()[:40]


def _existing_locks(session: Any, workflow_id: str, facts: OrderFacts) -> dict[str, str]:
    """Checkout locks an earlier attempt took for this run, by holder."""
    holders = [_holder(workflow_id, i) for i in range(len(facts.lines))]
    return {lk.holder: lk.id for lk in session.scalars(select(t.CheckoutLock).where(t.CheckoutLock.holder.in_(holders)))}


def _take_locks(session: Any, workflow_id: str, facts: OrderFacts,
                existing: dict[str, str]) -> tuple[list[str], str | None]:
    """A checkout lock per line (one conditional UPDATE each: no oversell), reusing those an
    earlier attempt took, inside the caller's transaction. Out of stock: the locks taken are
    rolled back to a savepoint, and the error says why."""
    env = _env()
    lock_ids: list[str] = []
    try:
        with session.begin_nested():
            for i, line in enumerate(facts.lines):
                holder = _holder(workflow_id, i)
                lock_id = existing.get(holder)
                if lock_id is None:
                    lock = env.inventory.lock(
                        line.listing_id,
                        CheckoutLockIn(quantity=line.quantity, holder=holder, ttl_seconds=RESERVATION_TTL_SECONDS),
                        session=session,
                    )
                    lock_id = lock.id
                lock_ids.append(lock_id)
    except (InsufficientStock, NotFound) as exc:
        return [], str(exc)
    return lock_ids, None


def _reservation_record(clock: StepClock, lock_ids: list[str], error: str | None) -> StepRecord:
    if error is None:
        return StepRecord("reserve", "ok", clock, detail={"locks": lock_ids})
    return StepRecord("reserve", "failed", clock, detail={"error": error})


@DBOS.step(name="marketpilot.order.reserve")
def _reserve_step(workflow_id: str, facts: OrderFacts) -> Reservation | None:
    """The reservation of an order a reviewer approved (approved orders reserve in load)."""
    env = _env()
    clock = StepClock()
    boundary(workflow_id, "reserve", "start")
    with env.db.session() as s:
        existing = _existing_locks(s, workflow_id, facts)
        lock_ids, error = _take_locks(s, workflow_id, facts, existing)
        [written] = history.record_steps(s, env.source, workflow_id=workflow_id, kind=KIND,
                                         records=(_reservation_record(clock, lock_ids, error),))
        if error is not None and written:
            _set_order_status(s, facts.order_id, "failed")
    boundary(workflow_id, "reserve", "done")
    return Reservation(tuple(lock_ids)) if error is None else None


@DBOS.step(name="marketpilot.order.release")
def _release_step(workflow_id: str, reservation: Reservation) -> None:
    env = _env()
    clock = StepClock()
    boundary(workflow_id, "release", "start")
    released = []
    for lock_id in reservation.lock_ids:
        try:
            env.inventory.release(lock_id)
            released.append(lock_id)
        except NotFound:  # an earlier attempt of this step released it
            pass
    _record(workflow_id, "release", "compensated", clock, detail={"released": released}, compensations=1)
    boundary(workflow_id, "release", "done")


@DBOS.step(name="marketpilot.order.pay_and_ship")
def _pay_and_ship_step(workflow_id: str, facts: OrderFacts, reservation: Reservation, charged: Charged,
                       attempt: int) -> dict[str, Any]:
    """Authorise, capture and buy the shipping label, skipping what `charged` says earlier
    attempts did (each call's idempotency key is per run: a replay gets the first answer
    back). Then, in one transaction: the three calls are recorded, the locked units become a
    sale (``fulfil``, ``ShipmentCreated``, order ``shipped``), ``notify`` (e-mail and webhook
    notifications) is recorded, and the run completes. A call that fails ends the attempt:
    what it did and the failure (``retry`` or ``failed``) are recorded in one transaction and
    :class:`Halted` says what was done. A lock already gone was committed by an earlier
    attempt of this step (locks outlive runs: see RESERVATION_TTL_SECONDS); a replay finds
    the records and writes nothing again."""
    env = _env()
    payments = env.payments
    payment, captured, label = charged.payment, charged.captured, charged.label
    done: list[StepRecord] = []  # the calls of this attempt that succeeded, to record
    boundary(workflow_id, "ship", "start")
    operation, clock = "authorize", StepClock()
    try:
        if payment is None:
            payment = payments.authorize(amount_minor=facts.total_minor, currency=facts.currency,
                                         reference=facts.order_id, idempotency_key=f"{workflow_id}:authorize")
            done.append(StepRecord(operation, "ok", clock, attempt, {"payment_id": payment.id, "status": payment.status},
                                   (PaymentAuthorized(payment_id=payment.id, order_id=facts.order_id,
                                                      amount_minor=payment.amount_minor, currency=payment.currency),),
                                   elapsed_ms=clock.elapsed_ms))
            boundary(workflow_id, "ship", "authorized")
        if captured is None:
            operation, clock = "capture", StepClock()
            captured = payments.capture(payment.id, amount_minor=facts.total_minor,
                                        idempotency_key=f"{workflow_id}:capture")
            done.append(StepRecord(operation, "ok", clock, attempt,
                                   {"payment_id": captured.id, "captured_minor": captured.captured_minor},
                                   elapsed_ms=clock.elapsed_ms))
            boundary(workflow_id, "ship", "captured")
        if label is None:
            operation, clock = "label", StepClock()
            label = _buy_label(workflow_id, facts)
            done.append(StepRecord(operation, "ok", clock, attempt, {"label_id": label.id,
                                                                     "tracking_number": label.tracking_number,
                                                                     "service": label.service},
                                   elapsed_ms=clock.elapsed_ms))
            boundary(workflow_id, "ship", "labelled")
    except ProviderError as exc:
        _record_halt(workflow_id, facts, attempt, done, operation, clock, exc)
        raise Halted(exc, Charged(payment, captured, label)) from None

    clock = StepClock()
    data = {"tracking_number": label.tracking_number, "total_minor": facts.total_minor, "currency": facts.currency,
            "payment_id": payment.id}
    result = {"order_id": facts.order_id, "state": "completed", "outcome": "shipped", "reason": None,
              "payment_id": payment.id, "label_id": label.id, "compensated": False,
              "tracking_number": label.tracking_number}
    # The calls' records, the sale, its records and the run's completion commit together: a
    # replay after the commit finds the locks gone and the records written, and writes
    # nothing again. Everything but the writes is built before the transaction starts.
    shipped = ShipmentCreated(shipment_id=label.id, order_id=facts.order_id, carrier=env.carrier.name,
                              origin_region=facts.origin_region, destination_region=facts.shipping_region)
    notifications = (
        OrderNotification(order_id=facts.order_id, channel="email", recipient=f"user:{facts.user_id}",
                          template="order_shipped", data=data),
        OrderNotification(order_id=facts.order_id, channel="webhook", recipient=f"seller:{facts.seller_id}",
                          template="order.shipped", data=data),
    )
    with env.db.write() as s:
        for lock_id in reservation.lock_ids:
            try:
                env.inventory.commit(lock_id, session=s)
            except NotFound:  # raised before any write: the transaction goes on
                pass
        boundary(workflow_id, "ship", "committed")
        fulfil = StepRecord("fulfil", "ok", clock, detail={"committed": list(reservation.lock_ids)}, events=(shipped,),
                            elapsed_ms=clock.elapsed_ms)
        notify = StepRecord("notify", "ok", StepClock(), detail={"channels": ["email", "webhook"]}, events=notifications)
        *_, fulfilled, _ = history.record_steps(s, env.source, workflow_id=workflow_id, kind=KIND,
                                                records=(*done, fulfil, notify))
        if fulfilled:
            _set_order_status(s, facts.order_id, "shipped")
        history.set_state(s, env.source, workflow_id, "completed", outcome="shipped", reason=None, result=result)
    boundary(workflow_id, "ship", "done")
    return result


def _record_halt(workflow_id: str, facts: OrderFacts, attempt: int, done: list[StepRecord], operation: str,
                 clock: StepClock, error: ProviderError) -> None:
    """One transaction: the calls of this attempt that succeeded, then the one that failed:
    ``retry`` for a transient failure, ``failed`` otherwise (a declined authorisation emits
    ``PaymentFailed``)."""
    env = _env()
    detail: dict[str, Any] = {"error": str(error)}
    events: tuple[Any, ...] = ()
    if isinstance(error, Unavailable):
        status = "retry"
    else:
        status = "failed"
        if isinstance(error, Declined):
            detail["code"] = error.code
            if operation == "authorize":
                events = (PaymentFailed(payment_id="", order_id=facts.order_id, amount_minor=facts.total_minor,
                                        currency=facts.currency, reason=error.code),)
    failure = StepRecord(operation, status, clock, attempt, detail, events, retries=1 if status == "retry" else 0)
    with env.db.write() as s:
        written = history.record_steps(s, env.source, workflow_id=workflow_id, kind=KIND, records=(*done, failure))
        if any(new and call.step == "capture" for call, new in zip(done, written[:-1], strict=True)):
            _set_order_status(s, facts.order_id, "paid")


@DBOS.step(name="marketpilot.order.finish")
def _finish_step(
    workflow_id: str,
    facts: OrderFacts,
    state: str,
    outcome: str,
    reason: str | None,
    progress: Progress,
    human_steps: int,
    *,
    compensated: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    env = _env()
    boundary(workflow_id, "finish", "start")
    result = {"order_id": facts.order_id, "state": state, "outcome": outcome, "reason": reason,
              "payment_id": progress.payment_id, "label_id": progress.label_id, "compensated": compensated,
              **(extra or {})}
    with env.db.session() as s:
        history.set_state(s, env.source, workflow_id, state, outcome=outcome, reason=reason, result=result)
        if state != "completed":
            _set_order_status(s, facts.order_id, "cancelled" if state in ("rejected", "cancelled") else "failed")
    boundary(workflow_id, "finish", "done")
    return result


@DBOS.step(name="marketpilot.order.progress")
def _progress_step(workflow_id: str) -> tuple[OrderFacts | None, Progress]:
    """Facts and progress of a run from its step records (for operator compensation)."""
    env = _env()
    with env.db.read() as s:
        rows = {(r.step, r.status): r for r in s.scalars(select(WorkflowStep).where(WorkflowStep.workflow_id == workflow_id))}
        run_order = s.execute(
            select(t.Order).join(WorkflowRun, WorkflowRun.subject_id == t.Order.id)
            .where(WorkflowRun.id == workflow_id)
        ).scalar_one_or_none()
    if run_order is None:
        return None, Progress()
    facts = OrderFacts(order_id=run_order.id, user_id=run_order.user_id, seller_id=run_order.seller_id,
                       total_minor=run_order.total_minor, currency=run_order.currency,
                       shipping_region=run_order.shipping_region, origin_region=None, lines=())
    if ("fulfil", "ok") in rows or ("release", "compensated") in rows:
        reservation = None  # sold or already released: nothing left to release
    else:
        reserve = rows.get(("reserve", "ok"))
        reservation = Reservation(tuple(reserve.detail.get("locks", []))) if reserve is not None else None
    authorize = rows.get(("authorize", "ok"))
    capture = rows.get(("capture", "ok"))
    label = rows.get(("label", "ok"))
    return facts, Progress(
        reservation=reservation,
        payment_id=authorize.detail.get("payment_id") if authorize is not None else None,
        captured_minor=int(capture.detail.get("captured_minor", 0)) if capture is not None else 0,
        label_id=label.detail.get("label_id") if label is not None else None,
    )


# -- external steps --------------------------------------------------------------------------


def _compensating_call(workflow_id: str, step: str, attempt: int, fn: Callable[[], T],
                       detail: Callable[[T], dict[str, Any]]) -> T:
    """One attempt of an undoing call, recorded: ``compensated`` with `detail` of its answer,
    ``retry`` (transient failure) or ``failed`` (declined), then re-raised."""
    clock = StepClock()
    boundary(workflow_id, step, "start")
    try:
        value = fn()
    except Unavailable as exc:
        _record(workflow_id, step, "retry", clock, attempt=attempt, detail={"error": str(exc)}, retries=1)
        raise
    except Declined as exc:
        _record(workflow_id, step, "failed", clock, attempt=attempt, detail={"error": str(exc), "code": exc.code})
        raise
    _record(workflow_id, step, "compensated", clock, attempt=attempt, detail=detail(value), compensations=1)
    boundary(workflow_id, step, "done")
    return value


def _buy_label(workflow_id: str, facts: OrderFacts) -> Label:
    """The label of the cheapest rate (rate quotes are reused per lane: see the carrier)."""
    carrier = _env().carrier
    origin, destination = facts.origin_region or "EU", facts.shipping_region or "EU"
    weight = GRAMS_PER_UNIT * facts.units
    rates = carrier.rates(origin=origin, destination=destination, weight_grams=weight)
    cheapest = min(rates, key=lambda r: r.amount_minor)
    return carrier.create_label(reference=facts.order_id, service=cheapest.service, origin=origin,
                                destination=destination, weight_grams=weight, idempotency_key=f"{workflow_id}:label")


@DBOS.step(name="marketpilot.order.void")
def _void_step(workflow_id: str, payment_id: str, attempt: int) -> Payment:
    payments = _env().payments
    return _compensating_call(workflow_id, "void", attempt,
                              lambda: payments.void(payment_id, idempotency_key=f"{workflow_id}:void"),
                              lambda p: {"payment_id": p.id, "status": p.status})


@DBOS.step(name="marketpilot.order.refund")
def _refund_step(workflow_id: str, payment_id: str, amount_minor: int, attempt: int) -> Any:
    payments = _env().payments
    return _compensating_call(
        workflow_id, "refund", attempt,
        lambda: payments.refund(payment_id, amount_minor=amount_minor, idempotency_key=f"{workflow_id}:refund"),
        lambda r: {"refund_id": r.id, "amount_minor": r.amount_minor},
    )


@DBOS.step(name="marketpilot.order.discover")
def _discover_step(workflow_id: str, order_id: str, attempt: int) -> Found:
    """Ask both providers what was done for the order (recorded as step ``discover``)."""
    env = _env()
    clock = StepClock()
    try:
        found = Found(tuple(env.payments.find(reference=order_id)), tuple(env.carrier.find_labels(reference=order_id)))
    except Unavailable as exc:
        _record(workflow_id, "discover", "retry", clock, attempt=attempt, detail={"error": str(exc)}, retries=1)
        raise
    _record(workflow_id, "discover", "ok", clock, attempt=attempt, detail={
        "payments": [{"payment_id": p.id, "status": p.status, "captured_minor": p.captured_minor,
                      "refunded_minor": p.refunded_minor} for p in found.payments],
        "labels": [{"label_id": lb.id, "status": lb.status} for lb in found.labels]})
    return found


@DBOS.step(name="marketpilot.order.cancel_label")
def _cancel_label_step(workflow_id: str, label_id: str, attempt: int) -> Label:
    carrier = _env().carrier
    return _compensating_call(workflow_id, "cancel_label", attempt,
                              lambda: carrier.cancel_label(label_id, idempotency_key=f"{workflow_id}:cancel_label"),
                              lambda lb: {"label_id": lb.id, "status": lb.status})

