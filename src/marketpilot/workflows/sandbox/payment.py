"""Sandbox payment provider: manual-capture payment intents, captures, voids and refunds,
kept in memory and audited through ``GET /_sandbox/records``."""

from __future__ import annotations

import itertools
from typing import Any

from marketpilot.workflows.sandbox.server import Answer, Sandbox, SandboxError


class PaymentSandbox(Sandbox):
    name = "payments"
    DECLINE_STATUS = 402
    DECLINE_CODE = "card_declined"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.intents: dict[str, dict[str, Any]] = {}
        self.captures: list[dict[str, Any]] = []
        self.voids: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self.route("POST", "/v1/payment_intents", "authorize", self._authorize)
        self.route("POST", "/v1/payment_intents/{id}/capture", "capture", self._capture)
        self.route("POST", "/v1/payment_intents/{id}/cancel", "void", self._void)
        self.route("POST", "/v1/refunds", "refund", self._refund)
        self.route("GET", "/v1/payment_intents/{id}", "retrieve", self._retrieve)
        self.route("GET", "/v1/payment_intents", "find", self._find)

    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise SandboxError(404, "resource_missing", f"no payment intent {intent_id!r}")
        return intent

    def _authorize(self, body: dict[str, Any], _: list[str]) -> Answer:
        amount = int(body["amount"])
        if amount <= 0:
            raise SandboxError(400, "amount_invalid", "amount must be positive")
        intent_id = f"pi_{next(self._ids):08d}"
        intent: dict[str, Any] = {
            "id": intent_id, "status": "requires_capture", "amount": amount,
            "currency": str(body["currency"]), "reference": str(body.get("reference", "")), "amount_captured": 0,
            "amount_refunded": 0,
        }
        self.intents[intent_id] = intent
        return 200, dict(intent)

    def _capture(self, body: dict[str, Any], params: list[str]) -> Answer:
        intent = self._intent(params[0])
        if intent["status"] != "requires_capture":
            raise SandboxError(409, "payment_intent_unexpected_state", f"intent is {intent['status']}")
        amount = int(body.get("amount_to_capture", intent["amount"]))
        if amount > intent["amount"]:
            raise SandboxError(400, "amount_too_large", "cannot capture more than authorised")
        intent.update(status="succeeded", amount_captured=amount)
        self.captures.append({"payment_intent": intent["id"], "reference": intent["reference"], "amount": amount})
        return 200, dict(intent)

    def _void(self, _: dict[str, Any], params: list[str]) -> Answer:
        intent = self._intent(params[0])
        if intent["status"] != "requires_capture":
            raise SandboxError(409, "payment_intent_unexpected_state", f"intent is {intent['status']}")
        intent["status"] = "canceled"
        self.voids.append({"payment_intent": intent["id"], "reference": intent["reference"]})
        return 200, dict(intent)

    def _refund(self, body: dict[str, Any], _: list[str]) -> Answer:
        intent = self._intent(str(body["payment_intent"]))
        amount = int(body.get("amount", intent["amount_captured"]))
        if intent["status"] not in ("succeeded", "refunded") or amount > intent["amount_captured"] - intent["amount_refunded"]:
            raise SandboxError(409, "charge_not_refundable", "nothing left to refund")
        intent["amount_refunded"] += amount
        if intent["amount_refunded"] == intent["amount_captured"]:
            intent["status"] = "refunded"
        refund = {"id": f"re_{next(self._ids):08d}", "payment_intent": intent["id"], "amount": amount,
                  "reference": intent["reference"]}
        self.refunds.append(refund)
        return 200, dict(refund)

    def _retrieve(self, _: dict[str, Any], params: list[str]) -> Answer:
        return 200, dict(self._intent(params[0]))

    def _find(self, query: dict[str, Any], _: list[str]) -> Answer:
        reference = str(query["reference"])
        with self.lock:  # GETs run beside writes on other server threads
            return 200, {"data": [dict(i) for i in self.intents.values() if i["reference"] == reference]}

    def records(self) -> dict[str, Any]:
        return {
            "intents": [dict(i) for i in self.intents.values()],
            "captures": list(self.captures), "voids": list(self.voids), "refunds": list(self.refunds),
        }
