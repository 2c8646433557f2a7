"""The sandbox provider servers behave like a provider on the wire."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import httpx

from marketpilot.workflows.sandbox.carrier import CarrierSandbox
from marketpilot.workflows.sandbox.server import SandboxServer

LABEL = {"reference": "o1", "service": "standard", "origin": "EU", "destination": "EU", "weight_grams": 500}


def test_a_request_cut_off_before_its_body_is_not_performed_nor_remembered_under_its_key() -> None:
    """A worker killed between writing a request's headers and its body must not leave an
    answer stored under the idempotency key: the retry with the full body must succeed."""
    carrier = CarrierSandbox()
    with SandboxServer(carrier) as server:
        url = urlparse(server.url)
        body = json.dumps(LABEL).encode()
        head = (f"POST /v1/labels HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                f"Idempotency-Key: order:o1:label\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(head)  # and the process dies before the body
        time.sleep(0.3)  # let the server read the cut request first (else the test proves nothing)
        answer = httpx.post(f"{server.url}/v1/labels", json=LABEL, headers={"Idempotency-Key": "order:o1:label"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["service"] == "standard"
        assert [lb["reference"] for lb in carrier.records()["labels"]] == ["o1"]
