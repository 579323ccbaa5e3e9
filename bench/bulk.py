"""5. Bulk issuing: forms per second through POST /api/v1/forms/batch.

Runs only if the API's OpenAPI description has that path; the request body
is built from its schema: a JSON array of forms, or an object whose one
array property holds them (per-form results, if the answer has them, count
only forms issued). Batches of 100 forms, one client, repeated.
"""
from __future__ import annotations

import time
from datetime import date, timedelta

import requests

import harness

PATH = "/api/v1/forms/batch"


def _form(tag: str, i: int) -> dict:
    return {"invoice_number": f"{tag}-{i}", "purchase_date": (date.today() - timedelta(days=1)).isoformat(),
            "traveller": {"first_name": "Mei", "last_name": "Chen", "passport_number": f"D{tag}{i:06d}".upper(),
                          "passport_country": "CN", "nationality": "CN", "residence_country": "CN",
                          "date_of_birth": "1988-03-14"},
            "items": [{"description": "Wool coat", "quantity": 1, "unit_price_cents": 12100,
                       "vat_rate": 21, "category": "clothing"}]}


def _wrap(spec: dict):
    """How a list of forms goes into the request body, from the spec."""
    operation = spec["paths"][PATH].get("post", {})
    schema = (operation.get("requestBody", {}).get("content", {})
              .get("application/json", {}).get("schema", {}))
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("type") == "array":
        return lambda forms: forms
    arrays = [name for name, prop in schema.get("properties", {}).items()
              if prop.get("type") == "array" or "items" in prop]
    name = arrays[0] if len(arrays) == 1 else "forms"
    return lambda forms: {name: forms}


def run(base: str, world, batches: int = 5, size: int = 100) -> dict:
    spec = requests.get(base + "/openapi.json", timeout=10).json()
    if PATH not in spec.get("paths", {}):
        return {"available": False, "note": f"{PATH} not available yet (not in /openapi.json)"}
    wrap = _wrap(spec)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {world.shop_token}"
    rates, statuses = [], []
    for b in range(batches):
        tag = f"BK{b}{int(time.time()) % 100000}"
        body = wrap([_form(tag, i) for i in range(size)])
        t = time.perf_counter()
        response = session.post(base + PATH, json=body, timeout=120)
        elapsed = time.perf_counter() - t
        statuses.append(response.status_code)
        if response.status_code < 300:
            # A batch answers per form; count the forms actually issued.
            items = response.json().get("items") if isinstance(response.json(), dict) else None
            issued = sum(1 for item in items if item.get("status") == 201) if items else size
            rates.append(issued / elapsed)
            if issued < size:
                statuses.append(f"{size - issued} of {size} forms refused")
    result = {"available": True, "batch_size": size, "batches": batches, "statuses": statuses,
              "forms_per_s": harness.spread(rates)}
    if not rates:
        result["note"] = f"every batch failed (HTTP {statuses[0]}): the bench's request shape may not match"
    return result
