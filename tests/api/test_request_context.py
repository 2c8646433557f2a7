from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient

from marketpilot.platform.monitoring import configure_logging


def test_a_request_id_is_generated_and_echoed(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert len(first) == 32 and first != second


def test_a_valid_incoming_request_id_is_honoured(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "edge-42:a.b"}).headers["x-request-id"] == "edge-42:a.b"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", ""])
def test_an_invalid_incoming_request_id_is_replaced(client: TestClient, bad: str) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
    assert echoed != bad and len(echoed) == 32


def test_every_request_gets_one_access_log_line_with_route_status_and_duration(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="marketpilot.access"):
        client.get("/v1/listings/l1", headers={"X-Request-ID": "abc"})
    [record] = [r for r in caplog.records if r.name == "marketpilot.access"]
    fields = {k: getattr(record, k) for k in ("request_id", "method", "route", "path", "status")}
    assert fields == {"request_id": "abc", "method": "GET", "route": "/v1/listings/{listing_id}",
                      "path": "/v1/listings/l1", "status": 401}
    assert record.duration_ms >= 0  # type: ignore[attr-defined]


def test_access_log_is_json_with_the_request_id(client: TestClient) -> None:
    stream = io.StringIO()
    handler = configure_logging("info", stream)
    try:
        client.get("/healthz", headers={"X-Request-ID": "json-1"})
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [access] = [line for line in lines if line["logger"] == "marketpilot.access"]
    assert access["request_id"] == "json-1"
    assert access["route"] == "/healthz" and access["status"] == 200 and access["level"] == "INFO"
    assert access["message"] == "GET /healthz 200"
