"""The API's Blueprint: flask-smorest's, with a request parser that refuses
JSON nested too deeply for Python's parser as malformed JSON (400) instead
of letting the RecursionError through as a 500."""
from __future__ import annotations

import json

import flask_smorest
from webargs.flaskparser import FlaskParser


class Parser(FlaskParser):
    # _raw_load_json is the hook webargs' own parsers override to read a
    # body; load_json turns a JSONDecodeError from it into the usual 400.
    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            # A non-empty doc: an empty one would mean "no body" to webargs.
            raise json.JSONDecodeError("JSON nested too deeply", doc="[...]", pos=0) from None


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def arguments(self, schema, *args, **kwargs):
        # webargs makes a new instance of a schema class for every request it
        # parses, and marshmallow copies every field to make one (nested
        # schemas too): for a form, twice the cost of loading it. One
        # instance, made here, serves every request; a schema holds no state
        # between loads.
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)
