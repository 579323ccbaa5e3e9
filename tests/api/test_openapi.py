"""The OpenAPI description is generated from the code and covers every route."""
from __future__ import annotations

import re

from api.portal import PAGE_BLUEPRINTS


def test_every_route_appears_in_openapi_json(app, client):
    spec = client.get("/openapi.json").get_json()
    documented = {
        (path, method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    undocumented = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"static", "swagger_assets"} or rule.endpoint.startswith("api-docs."):
            continue
        # The web pages (retailer portal, status page, dashboard) are pages
        # for people, not API operations.
        if rule.endpoint.partition(".")[0] in PAGE_BLUEPRINTS:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (path, method) not in documented:
                undocumented.append(f"{method} {path}")
    assert undocumented == []
    assert len(documented) >= 20


def test_the_contract_paths_are_there(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ["/api/v1/auth/token", "/api/v1/forms", "/api/v1/forms/{form_id}", "/api/v1/forms/{form_id}/qr.png",
                 "/api/v1/forms/{form_id}/qr.svg", "/api/v1/forms/{form_id}/cancel", "/api/v1/forms/{form_id}/refund",
                 "/api/v1/forms/{form_id}/events", "/api/v1/scans", "/api/v1/checks",
                 "/api/v1/forms/{form_id}/decision", "/api/v1/exit-points", "/api/v1/intermediaries",
                 "/api/v1/retailers", "/api/v1/users", "/api/v1/devices", "/.well-known/jwks.json",
                 "/healthz", "/readyz"]:
        assert path in paths, path


def test_errors_are_documented_as_problem_details(client):
    spec = client.get("/openapi.json").get_json()
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) >= {"type", "title", "status", "detail", "code", "errors"}
    decision = spec["paths"]["/api/v1/forms/{form_id}/decision"]["post"]["responses"]
    assert decision["409"] == {"$ref": "#/components/responses/CONFLICT"}
    conflict = spec["components"]["responses"]["CONFLICT"]["content"]
    assert conflict == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_the_docs_page_loads_only_local_files(client):
    html = client.get("/docs").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    for source in sources:
        with client.get(source) as asset:
            assert asset.status_code == 200
