"""Sellers' webhook endpoints over HTTP: a merchant manages its own, the operator any; the
secret is shown once; bad URLs are 422s."""

from __future__ import annotations

from api_seed import Keys, auth
from fastapi.testclient import TestClient

URL = "https://hooks.example.com/marketpilot"


def test_a_merchant_registers_its_own_webhook_and_sees_the_secret_once(client: TestClient, keys: Keys) -> None:
    merchant = auth(keys.merchant)
    assert client.get("/v1/sellers/s1/webhook", headers=merchant).status_code == 404  # none yet
    made = client.put("/v1/sellers/s1/webhook", json={"url": URL}, headers=merchant)
    assert made.status_code == 200, made.text
    assert made.json()["secret"].startswith("whsec_") and made.json()["url"] == URL
    shown = client.get("/v1/sellers/s1/webhook", headers=merchant).json()
    assert shown["url"] == URL and shown["secret"] is None
    assert client.get("/v1/sellers/s1/webhook/deliveries", headers=merchant).json() == []
    assert client.get("/v1/sellers/s1/webhook/deliveries", params={"status": "lost"}, headers=merchant).status_code == 422
    assert client.delete("/v1/sellers/s1/webhook", headers=merchant).status_code == 204
    assert client.get("/v1/sellers/s1/webhook", headers=merchant).status_code == 404


def test_scoping_roles_and_validation(client: TestClient, keys: Keys) -> None:
    merchant, operator, service = auth(keys.merchant), auth(keys.operator), auth(keys.service)
    assert client.put("/v1/sellers/s2/webhook", json={"url": URL}, headers=merchant).status_code == 404  # not its seller
    assert client.put("/v1/sellers/s2/webhook", json={"url": URL}, headers=service).status_code == 403
    assert client.put("/v1/sellers/s2/webhook", json={"url": URL}).status_code == 401
    assert client.put("/v1/sellers/s2/webhook", json={"url": URL}, headers=operator).status_code == 200
    assert client.get("/v1/sellers/s2/webhook/deliveries", headers=merchant).status_code == 404
    for body in ({"url": "ftp://hooks.example.com/x"}, {"url": "http://127.0.0.1:9000/"}, {"url": ""},
                 {"url": URL, "extra": 1}, {}):
        answer = client.put("/v1/sellers/s1/webhook", json=body, headers=merchant)
        assert answer.status_code == 422, (body, answer.text)
    assert "private" in client.put("/v1/sellers/s1/webhook", json={"url": "http://10.0.0.5/x"}, headers=merchant).text
