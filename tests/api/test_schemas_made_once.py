"""Schemas are made once, not per request: marshmallow copies every field
(and every nested schema's fields) to make one, which costs more than
loading a form with it. webargs would make one per request from a schema
class; api/resources/blueprint.py hands it an instance instead."""
from __future__ import annotations

import marshmallow
import pytest

from tests.builders import form_body


@pytest.fixture
def schemas_made(monkeypatch):
    made = []
    init = marshmallow.Schema.__init__

    def counted(self, *args, **kwargs):
        made.append(type(self).__name__)
        init(self, *args, **kwargs)

    monkeypatch.setattr(marshmallow.Schema, "__init__", counted)
    return made


def test_issuing_a_form_scanning_it_and_a_batch_make_no_schema(world, schemas_made):
    # The first request of each kind may make the schemas a view uses
    # lazily (a nested field's schema): not the ones after it.
    for n in range(2):
        issued = world.issue("shop", invoice=f"ONCE-{n}")
        assert world.scan("kiosk", issued["qr_payload"]).status_code == 200
        r = world.post("shop", "/api/v1/forms/batch", {"forms": [form_body(invoice=f"BATCH-{n}")]})
        assert r.status_code == 200 and r.get_json()["items"][0]["status"] == 201
        if n == 0:
            schemas_made.clear()

    assert schemas_made == []


def test_a_malformed_form_is_still_refused_field_by_field(world):
    # The one instance keeps no state from one load to the next.
    good = world.post("shop", "/api/v1/forms", form_body(invoice="GOOD-1"))
    body = form_body(invoice="BAD-1")
    body["items"][0]["vat_rate"] = "lots"
    del body["traveller"]["passport_number"]
    bad = world.post("shop", "/api/v1/forms", body)
    again = world.post("shop", "/api/v1/forms", form_body(invoice="GOOD-2"))

    assert good.status_code == again.status_code == 201
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"items.0.vat_rate", "traveller.passport_number"}
