"""The payment adapter against the sandbox payment provider on loopback (real HTTP)."""

from __future__ import annotations

import pytest

from marketpilot.workflows.integrations.errors import Unavailable
from marketpilot.workflows.integrations.payments import HttpPaymentProvider
from marketpilot.workflows.integrations.transport import ProviderTransport
from marketpilot.workflows.sandbox.payment import PaymentSandbox
from marketpilot.workflows.sandbox.server import SandboxServer


def test_payment_intents_are_found_by_reference_with_what_was_captured_and_refunded() -> None:
    """What a compensation asks when no record names the payment: the provider's own state."""
    sandbox = PaymentSandbox()
    with SandboxServer(sandbox) as server:
        transport = ProviderTransport("payments", server.url)
        try:
            payments = HttpPaymentProvider(transport)
            held = payments.authorize(amount_minor=1500, currency="EUR", reference="o1", idempotency_key="a1")
            other = payments.authorize(amount_minor=900, currency="EUR", reference="o2", idempotency_key="a2")
            [found] = payments.find(reference="o1")
            assert (found.id, found.status, found.captured_minor, found.refunded_minor, found.reference) == (
                held.id, "requires_capture", 0, 0, "o1")
            payments.capture(other.id, amount_minor=900, idempotency_key="c2")
            payments.refund(other.id, amount_minor=400, idempotency_key="r2")
            [partly] = payments.find(reference="o2")
            assert (partly.status, partly.captured_minor, partly.refunded_minor) == ("succeeded", 900, 400)
            assert payments.find(reference="o3") == []
            sandbox.set_fault("error", operation="find")
            with pytest.raises(Unavailable):  # a lookup that fails is retried, never read as "nothing"
                payments.find(reference="o1")
        finally:
            transport.close()
