from __future__ import annotations

from fastapi.testclient import TestClient


def test_openapi_documents_the_bearer_scheme_on_every_v1_operation(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "mp_<id>_<secret>",
        "description": "An API key created with `marketpilot keys create`, sent as `Authorization: Bearer <key>`.",
    }
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            open_v2 = path in ("/v2", "/v2/health/live", "/v2/health/ready") or path.endswith("/ready")
            guarded = path.startswith("/v1") or path == "/metrics" or (path.startswith("/v2") and not open_v2)
            assert (op.get("security") == [{"ApiKey": []}]) == guarded, (method, path)
            if path.startswith("/v1"):
                assert {"401", "403", "422"} <= set(op["responses"]), (method, path)


def test_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger-ui" in response.text
