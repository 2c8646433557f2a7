"""Every failure has the same JSON shape and the right status."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_seed import Keys, auth, build_runtime
from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.platform.db import Database
from marketpilot.runtime import Runtime


def assert_error(response: object, status: int, code: str) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    return str(error["message"])


def test_missing_key_is_a_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/v1/listings/l1")
    assert "Authorization: Bearer" in assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer mp_000000000000_" + "A" * 43, "Bearer not-a-key", "Basic dXNlcjpwYXNz", "Bearer", "mp_x"],
)
def test_unknown_or_malformed_keys_are_a_401(client: TestClient, header: str) -> None:
    assert_error(client.get("/v1/listings/l1", headers={"Authorization": header}), 401, "unauthenticated")


def test_a_real_key_id_with_a_wrong_secret_is_a_401(client: TestClient, keys: Keys) -> None:
    forged = keys.operator[:-43] + "B" * 43
    assert "unknown or revoked" in assert_error(client.get("/v1/listings/l1", headers=auth(forged)), 401,
                                                "unauthenticated")


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    assert assert_error(client.get("/v1/nothing-here"), 404, "not_found") == "no route matches /v1/nothing-here"


def test_wrong_method_is_a_json_405(client: TestClient, keys: Keys) -> None:
    response = client.put("/v1/orders/o1", headers=auth(keys.operator))
    assert "PUT is not allowed" in assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_malformed_json_is_a_422(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/sellers", content=b"{not json", headers={**auth(keys.operator),
                                                                        "Content-Type": "application/json"})
    assert assert_error(response, 422, "validation_error").startswith("body: malformed JSON at 1: Expecting property name")


@pytest.fixture
def small_limit_client(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    rt = build_runtime(db, tmp_path / "small", max_request_bytes=2048)
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c
    rt.close()


def test_declared_oversized_body_is_a_413_before_auth(small_limit_client: TestClient) -> None:
    response = small_limit_client.post("/v1/sellers", content=b"x" * 4096)
    assert "limit of 2048 bytes" in assert_error(response, 413, "request_too_large")


def test_streamed_oversized_body_without_length_is_a_413(small_limit_client: TestClient, keys: Keys) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 1000

    response = small_limit_client.post(
        "/v1/sellers", content=chunks(), headers={**auth(keys.operator), "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "request_too_large")


def test_small_streamed_body_passes(small_limit_client: TestClient, keys: Keys) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "s7", '
        yield b'"name": "Seven"}'

    response = small_limit_client.post(
        "/v1/sellers", content=chunks(), headers={**auth(keys.operator), "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


def test_unexpected_error_is_an_opaque_500_logged_with_the_request_id(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        raise RuntimeError("password=hunter2 in postgresql://db")

    client.app.add_api_route("/v1/explode", explode)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="marketpilot.api"):
        response = client.get("/v1/explode", headers={"X-Request-ID": "req-500"})
    message = assert_error(response, 500, "internal_error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert "quote the request id" in message
    [record] = [r for r in caplog.records if r.name == "marketpilot.api"]
    assert record.request_id == "req-500"  # type: ignore[attr-defined]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


def test_text_the_database_cannot_store_is_a_422_not_a_500(client: TestClient, keys: Keys, runtime: Runtime) -> None:
    response = client.post("/v1/sellers", json={"id": "s9", "name": "nul\x00byte"}, headers=auth(keys.operator))
    if runtime.db.is_sqlite:  # SQLite stores NUL characters; PostgreSQL text cannot
        assert response.status_code == 201
    else:
        assert "NUL characters" in assert_error(response, 422, "invalid_input")
