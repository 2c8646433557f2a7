"""The carrier adapter against the sandbox carrier on loopback (real HTTP)."""

from __future__ import annotations

import time

import pytest

from marketpilot.workflows.integrations.carrier import HttpCarrier
from marketpilot.workflows.integrations.errors import Unavailable
from marketpilot.workflows.integrations.transport import ProviderTransport
from marketpilot.workflows.sandbox.carrier import CarrierSandbox
from marketpilot.workflows.sandbox.server import SandboxServer

LANE = {"origin": "DE", "destination": "FR", "weight_grams": 500}


def test_a_lanes_rate_quote_is_reused_within_its_ttl_and_asked_again_after() -> None:
    sandbox = CarrierSandbox()
    with SandboxServer(sandbox) as server:
        transport = ProviderTransport("carrier", server.url)
        try:
            carrier = HttpCarrier(transport, rates_ttl=0.3)
            first = carrier.rates(**LANE)
            assert first, "the sandbox quotes every lane"
            sandbox.set_fault("error", operation="rates")  # from now on the carrier answers 503
            assert carrier.rates(**LANE) == first  # kept: no call made
            with pytest.raises(Unavailable):  # another lane is asked, and fails
                carrier.rates(**{**LANE, "destination": "IT"})
            time.sleep(0.4)
            with pytest.raises(Unavailable):  # the quote expired: asked again
                carrier.rates(**LANE)
        finally:
            transport.close()


def test_without_a_ttl_every_rate_request_asks_the_carrier() -> None:
    sandbox = CarrierSandbox()
    with SandboxServer(sandbox) as server:
        transport = ProviderTransport("carrier", server.url)
        try:
            carrier = HttpCarrier(transport)
            carrier.rates(**LANE)
            sandbox.set_fault("error", operation="rates")
            with pytest.raises(Unavailable):
                carrier.rates(**LANE)
        finally:
            transport.close()


def test_labels_are_found_by_their_reference_whatever_their_state() -> None:
    """What a compensation asks when no record names the label: the carrier's own list."""
    sandbox = CarrierSandbox()
    with SandboxServer(sandbox) as server:
        transport = ProviderTransport("carrier", server.url)
        try:
            carrier = HttpCarrier(transport)
            made = carrier.create_label(reference="o 1/&x", service="standard", idempotency_key="k1", **LANE)
            carrier.create_label(reference="o2", service="standard", idempotency_key="k2", **LANE)
            assert carrier.find_labels(reference="o 1/&x") == [made]  # the reference survives the query string
            carrier.cancel_label(made.id, idempotency_key="k3")
            assert [(lb.id, lb.status, lb.reference) for lb in carrier.find_labels(reference="o 1/&x")] == [
                (made.id, "cancelled", "o 1/&x")]
            assert carrier.find_labels(reference="nobody") == []
        finally:
            transport.close()
