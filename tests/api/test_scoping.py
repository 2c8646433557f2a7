"""Who may call what, route by route: the roles each `/v1` route admits, and, on every route
that returns seller-owned data, that a merchant key for seller s1 asking for seller s2's
resource gets 404 while an operator key gets it. A meta-test fails when a `/v1` route exists
that this table does not list, so a new route cannot ship without its policy being tested."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from api_seed import Keys, auth
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from marketpilot.api import create_app
from marketpilot.api.security import Allow
from marketpilot.platform.auth import Role
from marketpilot.platform.config import load_settings
from marketpilot.runtime import Runtime

OP, MER, SVC = Role.OPERATOR, Role.MERCHANT, Role.SERVICE
READ = frozenset({OP, MER, SVC})
SELLER_WRITE = frozenset({OP, MER})
MACHINE = frozenset({OP, SVC})
OPERATOR = frozenset({OP})

Kind = Literal["item", "collection", "create", "none"]


@dataclass(frozen=True)
class Call:
    url: str
    body: Any = None


@dataclass(frozen=True)
class RouteCase:
    method: str
    template: str
    roles: frozenset[Role]
    kind: Kind
    own: Call  # a request a merchant of s1 may legitimately make (or any request, for others)
    other: Call | None = None  # the same request aimed at seller s2's data
    owner_field: str = "seller_id"  # collections: the field naming each row's seller
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.template}"


LISTING = {"title": "New", "category_path": "toys", "price_minor": 100, "currency": "EUR"}
INTERACTION = {"user_id": "u1", "listing_id": "l1", "event": "view", "timestamp": "2024-05-01T10:00:00Z"}

ROUTES: list[RouteCase] = [
    RouteCase("GET", "/v1/monitoring/drift", MACHINE, "none", Call("/v1/monitoring/drift")),
    RouteCase("POST", "/v1/fraud/score", MACHINE, "none",
              Call("/v1/fraud/score", {"transaction_id": "t9", "user_id": "u1", "amount_minor": 100, "currency": "EUR"})),
    RouteCase("GET", "/v1/fraud/reviews", OPERATOR, "none", Call("/v1/fraud/reviews")),
    RouteCase("POST", "/v1/fraud/reviews/{decision_id}", OPERATOR, "none",
              Call("/v1/fraud/reviews/999999", {"label": "fraud"})),
    RouteCase("POST", "/v1/experiments", OPERATOR, "none", Call("/v1/experiments", {"id": "x1", "name": "x"})),
    RouteCase("GET", "/v1/experiments", OPERATOR, "none", Call("/v1/experiments")),
    RouteCase("GET", "/v1/experiments/{experiment_id}", OPERATOR, "none", Call("/v1/experiments/x1")),
    RouteCase("POST", "/v1/experiments/{experiment_id}/ramp", OPERATOR, "none", Call("/v1/experiments/x1/ramp")),
    RouteCase("POST", "/v1/experiments/{experiment_id}/kill", OPERATOR, "none",
              Call("/v1/experiments/x1/kill", {"reason": "test"})),
    RouteCase("POST", "/v1/experiments/{experiment_id}/outcomes", MACHINE, "none",
              Call("/v1/experiments/x1/outcomes", {"arm": "control", "sessions": [{"gmv": 1.0}]})),
    RouteCase("GET", "/v1/experiments/{experiment_id}/assignment", MACHINE, "none",
              Call("/v1/experiments/x1/assignment?unit_id=u1")),
    RouteCase("POST", "/v1/sellers", OPERATOR, "none", Call("/v1/sellers", {"id": "s9", "name": "Nine"})),
    RouteCase("GET", "/v1/sellers", READ, "collection", Call("/v1/sellers"), Call("/v1/sellers"), owner_field="id"),
    RouteCase("GET", "/v1/sellers/{seller_id}", READ, "item", Call("/v1/sellers/s1"), Call("/v1/sellers/s2")),
    RouteCase("PUT", "/v1/sellers/{seller_id}/webhook", SELLER_WRITE, "item",
              Call("/v1/sellers/s1/webhook", {"url": "https://hooks.example.com/a"}),
              Call("/v1/sellers/s2/webhook", {"url": "https://hooks.example.com/b"})),
    RouteCase("GET", "/v1/sellers/{seller_id}/webhook", SELLER_WRITE, "none", Call("/v1/sellers/s1/webhook")),
    RouteCase("DELETE", "/v1/sellers/{seller_id}/webhook", SELLER_WRITE, "none", Call("/v1/sellers/s1/webhook")),
    RouteCase("GET", "/v1/sellers/{seller_id}/webhook/deliveries", SELLER_WRITE, "item",
              Call("/v1/sellers/s1/webhook/deliveries"), Call("/v1/sellers/s2/webhook/deliveries")),
    RouteCase(
        "POST", "/v1/listings", SELLER_WRITE, "create",
        Call("/v1/listings", {"id": "l9", "seller_id": "s1", **LISTING}),
        Call("/v1/listings", {"id": "l9", "seller_id": "s2", **LISTING}),
    ),
    RouteCase("GET", "/v1/listings", READ, "collection", Call("/v1/listings"), Call("/v1/listings?seller_id=s2")),
    RouteCase("GET", "/v1/listings/{listing_id}", READ, "item", Call("/v1/listings/l1"), Call("/v1/listings/l2")),
    RouteCase(
        "PATCH", "/v1/listings/{listing_id}", SELLER_WRITE, "item",
        Call("/v1/listings/l1", {"price_minor": 5}), Call("/v1/listings/l2", {"price_minor": 5}),
    ),
    RouteCase("DELETE", "/v1/listings/{listing_id}", SELLER_WRITE, "item",
              Call("/v1/listings/l1"), Call("/v1/listings/l2")),
    RouteCase("GET", "/v1/listings/{listing_id}/inventory", READ, "item",
              Call("/v1/listings/l1/inventory"), Call("/v1/listings/l2/inventory")),
    RouteCase(
        "PUT", "/v1/listings/{listing_id}/inventory", SELLER_WRITE, "item",
        Call("/v1/listings/l1/inventory", {"quantity": 3}), Call("/v1/listings/l2/inventory", {"quantity": 3}),
    ),
    RouteCase("POST", "/v1/listings/{listing_id}/inventory/locks", MACHINE, "none",
              Call("/v1/listings/l1/inventory/locks", {"quantity": 1, "holder": "cart-1"})),
    RouteCase("POST", "/v1/inventory/locks/{lock_id}/release", MACHINE, "none",
              Call("/v1/inventory/locks/nolock/release")),
    RouteCase("POST", "/v1/inventory/locks/{lock_id}/commit", MACHINE, "none",
              Call("/v1/inventory/locks/nolock/commit")),
    RouteCase("POST", "/v1/users", MACHINE, "none", Call("/v1/users", {"id": "u9", "region": "eu"})),
    RouteCase("GET", "/v1/users", MACHINE, "none", Call("/v1/users")),
    RouteCase("GET", "/v1/users/{user_id}", MACHINE, "none", Call("/v1/users/u1")),
    RouteCase("POST", "/v1/interactions/batch", MACHINE, "none",
              Call("/v1/interactions/batch", {"items": [INTERACTION]})),
    RouteCase("POST", "/v1/orders", MACHINE, "none",
              Call("/v1/orders", {"id": "o9", "user_id": "u1", "lines": [{"listing_id": "l1", "quantity": 1}]})),
    RouteCase("GET", "/v1/orders", READ, "collection", Call("/v1/orders"), Call("/v1/orders")),
    RouteCase("GET", "/v1/orders/{order_id}", READ, "item", Call("/v1/orders/o1"), Call("/v1/orders/o2")),
    RouteCase("POST", "/v1/keys", OPERATOR, "none", Call("/v1/keys", {"role": "service", "name": "x"})),
    RouteCase("GET", "/v1/keys", OPERATOR, "none", Call("/v1/keys")),
    RouteCase("DELETE", "/v1/keys/{key_id}", OPERATOR, "none", Call("/v1/keys/000000000000")),
    RouteCase("POST", "/v1/recommendations", MACHINE, "none",
              Call("/v1/recommendations", {"user_id": "u1", "k": 2})),
    RouteCase("GET", "/v1/recommendations/audit", OPERATOR, "none", Call("/v1/recommendations/audit?window=1h")),
    RouteCase("GET", "/v1/sellers/{seller_id}/listings/{listing_id}/ranking", READ, "item",
              Call("/v1/sellers/s1/listings/l1/ranking"), Call("/v1/sellers/s2/listings/l2/ranking")),
    RouteCase("GET", "/v1/sellers/{seller_id}/listings/{listing_id}/ranking/disputes", READ, "item",
              Call("/v1/sellers/s1/listings/l1/ranking/disputes"), Call("/v1/sellers/s2/listings/l2/ranking/disputes")),
    RouteCase("POST", "/v1/sellers/{seller_id}/listings/{listing_id}/ranking/disputes", SELLER_WRITE, "none",
              Call("/v1/sellers/s1/listings/l1/ranking/disputes", {"reason": "buried"})),
    RouteCase("GET", "/v1/listings/{listing_id}/similar", MACHINE, "none", Call("/v1/listings/l1/similar")),
    RouteCase("GET", "/v1/workflows", OPERATOR, "none", Call("/v1/workflows?kind=order")),
    RouteCase("GET", "/v1/workflows/metrics", OPERATOR, "none", Call("/v1/workflows/metrics")),
    RouteCase("GET", "/v1/workflows/{workflow_id}", OPERATOR, "none", Call("/v1/workflows/order:o1")),
    RouteCase("POST", "/v1/workflows/{workflow_id}/retry", OPERATOR, "none", Call("/v1/workflows/order:o1/retry")),
    RouteCase("POST", "/v1/workflows/{workflow_id}/cancel", OPERATOR, "none", Call("/v1/workflows/order:o1/cancel")),
    RouteCase("POST", "/v1/workflows/{workflow_id}/review", OPERATOR, "none",
              Call("/v1/workflows/order:o1/review", {"decision": "approve"})),
    RouteCase("POST", "/v1/workflows/onboarding", MACHINE, "none",
              Call("/v1/workflows/onboarding", {"seller_id": "s7", "company_name": "Seven GmbH", "country": "DE"})),
    RouteCase("POST", "/v1/disputes", MACHINE, "none",
              Call("/v1/disputes", {"id": "d1", "order_id": "o1", "user_id": "nobody", "category": "other"})),
]


def request(client: TestClient, case: RouteCase, call: Call, key: str) -> Any:
    return client.request(case.method, call.url, json=call.body, headers=auth(key))


def by_kind(*kinds: Kind) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in ROUTES if c.kind in kinds]


def v1_routes(app: FastAPI) -> dict[str, APIRoute]:
    """Every `/v1` (method, path template), through included routers."""
    found = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.path.startswith("/v1"):
            found.update({f"{method} {route.path}": route for method in route.methods or ()})
    return found


def declared_roles(route: APIRoute) -> frozenset[Role] | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        if isinstance(dep.call, Allow):
            return dep.call.roles
        pending.extend(dep.dependencies)
    return None


def test_route_table_lists_every_v1_route(tmp_path: Any) -> None:
    rt = Runtime(load_settings(home=tmp_path), migrate=False)
    try:
        actual = set(v1_routes(create_app(rt)))
    finally:
        rt.close()
    listed = {c.id for c in ROUTES}
    assert actual - listed == set(), "add these routes to ROUTES in tests/api/test_scoping.py"
    assert listed - actual == set(), "these ROUTES entries no longer exist"


def test_every_v1_route_declares_the_roles_listed_in_the_table(tmp_path: Any) -> None:
    rt = Runtime(load_settings(home=tmp_path), migrate=False)
    try:
        routes = v1_routes(create_app(rt))
    finally:
        rt.close()
    for case in ROUTES:
        assert declared_roles(routes[case.id]) == case.roles, case.id


@pytest.mark.parametrize("case", by_kind("item"))
def test_merchant_gets_404_for_another_sellers_resource_and_operator_gets_it(
    client: TestClient, keys: Keys, case: RouteCase
) -> None:
    assert case.other is not None
    denied = request(client, case, case.other, keys.merchant)
    assert denied.status_code == 404, denied.text
    assert denied.json()["error"]["code"] == "not_found"
    allowed = request(client, case, case.other, keys.operator)
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("case", by_kind("item"))
def test_merchant_gets_its_own_sellers_resource(client: TestClient, keys: Keys, case: RouteCase) -> None:
    response = request(client, case, case.own, keys.merchant)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", by_kind("collection"))
def test_merchant_lists_never_include_another_sellers_rows(client: TestClient, keys: Keys, case: RouteCase) -> None:
    assert case.other is not None
    mine = request(client, case, case.other, keys.merchant)
    assert mine.status_code == 200, mine.text
    assert {row[case.owner_field] for row in mine.json()["items"]} <= {"s1"}
    everyone = request(client, case, case.other, keys.operator)
    assert "s2" in {row[case.owner_field] for row in everyone.json()["items"]}


@pytest.mark.parametrize("case", by_kind("create"))
def test_merchant_cannot_create_rows_for_another_seller(client: TestClient, keys: Keys, case: RouteCase) -> None:
    assert case.other is not None
    denied = request(client, case, case.other, keys.merchant)
    assert denied.status_code == 422, denied.text
    assert "another seller" in denied.json()["error"]["message"]
    assert request(client, case, case.other, keys.operator).status_code == 201


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ROUTES if set(Role) - c.roles])
def test_roles_not_admitted_get_403(client: TestClient, keys: Keys, case: RouteCase) -> None:
    for role in sorted(set(Role) - case.roles):
        response = request(client, case, case.own, keys.of(role))
        assert response.status_code == 403, (role, response.text)
        assert response.json()["error"] == {
            "code": "forbidden",
            "message": f"a {role} key may not call this route",
            "request_id": response.headers["x-request-id"],
        }


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ROUTES])
def test_admitted_roles_pass_the_guard(client: TestClient, keys: Keys, case: RouteCase) -> None:
    for role in sorted(case.roles):
        response = request(client, case, case.own, keys.of(role))
        assert response.status_code not in (401, 403), (role, response.text)
        assert response.status_code < 500, (role, response.text)
