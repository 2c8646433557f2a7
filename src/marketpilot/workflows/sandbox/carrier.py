"""Sandbox carrier: rates, labels (with cancellation) and tracking, kept in memory.

Tracking status is steerable per label (``POST /_sandbox/tracking/{number}`` is not
offered; tests call :meth:`CarrierSandbox.set_tracking`) so disputes about non-delivery can
be decided on what "the carrier" reports.
"""

from __future__ import annotations

import itertools
from typing import Any

from marketpilot.workflows.sandbox.server import Answer, Sandbox, SandboxError

SERVICES = (("standard", 499, 3), ("express", 1299, 1))


class CarrierSandbox(Sandbox):
    name = "carrier"
    DECLINE_STATUS = 422
    DECLINE_CODE = "address_rejected"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.labels: dict[str, dict[str, Any]] = {}
        self.tracking: dict[str, str] = {}
        self.route("POST", "/v1/rates", "rates", self._rates)
        self.route("POST", "/v1/labels", "label", self._label)
        self.route("POST", "/v1/labels/{id}/cancel", "cancel_label", self._cancel)
        self.route("GET", "/v1/tracking/{number}", "track", self._track)
        self.route("GET", "/v1/labels", "find_labels", self._find)

    def set_tracking(self, tracking_number: str, status: str) -> None:
        with self.lock:
            self.tracking[tracking_number] = status

    def _rates(self, body: dict[str, Any], _: list[str]) -> Answer:
        weight = int(body["weight_grams"])
        rates = [{"service": s, "amount": base + weight // 100, "currency": "EUR", "days": d} for s, base, d in SERVICES]
        return 200, {"rates": rates}

    def _label(self, body: dict[str, Any], _: list[str]) -> Answer:
        number = next(self._ids)
        label = {
            "id": f"lbl_{number:08d}", "tracking_number": f"TRK{number:010d}", "service": str(body["service"]),
            "reference": str(body["reference"]), "status": "created",
        }
        self.labels[label["id"]] = label
        self.tracking[label["tracking_number"]] = "label_created"
        return 200, dict(label)

    def _cancel(self, _: dict[str, Any], params: list[str]) -> Answer:
        label = self.labels.get(params[0])
        if label is None:
            raise SandboxError(404, "label_missing", f"no label {params[0]!r}")
        label["status"] = "cancelled"
        self.tracking[label["tracking_number"]] = "cancelled"
        return 200, dict(label)

    def _track(self, _: dict[str, Any], params: list[str]) -> Answer:
        status = self.tracking.get(params[0])
        if status is None:
            raise SandboxError(404, "tracking_missing", f"unknown tracking number {params[0]!r}")
        return 200, {"tracking_number": params[0], "status": status}

    def _find(self, query: dict[str, Any], _: list[str]) -> Answer:
        reference = str(query["reference"])
        with self.lock:  # GETs run beside writes on other server threads
            return 200, {"data": [dict(v) for v in self.labels.values() if v["reference"] == reference]}

    def records(self) -> dict[str, Any]:
        return {"labels": [dict(v) for v in self.labels.values()]}
