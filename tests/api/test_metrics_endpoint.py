from __future__ import annotations

from api_seed import Keys, auth
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from marketpilot.runtime import Runtime


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_need_an_operator_or_service_key(client: TestClient, keys: Keys) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(keys.merchant)).status_code == 403
    response = client.get("/metrics", headers=auth(keys.service))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_requests_are_counted_per_route_template_and_status(client: TestClient, keys: Keys) -> None:
    for listing in ("l1", "l3", "nope"):
        client.get(f"/v1/listings/{listing}", headers=auth(keys.operator))
    client.get("/no/such/path")
    got = samples(client.get("/metrics", headers=auth(keys.operator)).text)
    route = ("route", "/v1/listings/{listing_id}")
    assert got[("marketpilot_http_requests_total", frozenset({("method", "GET"), route, ("status", "200")}))] == 2
    assert got[("marketpilot_http_requests_total", frozenset({("method", "GET"), route, ("status", "404")}))] == 1
    unmatched = frozenset({("method", "GET"), ("route", "<unmatched>"), ("status", "404")})
    assert got[("marketpilot_http_requests_total", unmatched)] == 1
    count = ("marketpilot_http_request_duration_seconds_count", frozenset({("method", "GET"), route, ("status", "200")}))
    assert got[count] == 2
    assert not any("/v1/listings/l1" in dict(labels).get("route", "") for _, labels in got)


def test_outbox_backlog_is_read_from_the_tables_at_scrape_time(client: TestClient, keys: Keys, runtime: Runtime) -> None:
    def backlog() -> float:
        got = samples(client.get("/metrics", headers=auth(keys.operator)).text)
        return got[("marketpilot_outbox_backlog_events", frozenset({("delivery", "embedded")}))]

    before = backlog()
    assert before > 0  # the seed wrote events and no consumer has run
    client.put("/v1/listings/l1/inventory", json={"quantity": 2}, headers=auth(keys.operator))
    assert backlog() == before + 1
