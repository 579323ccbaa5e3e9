"""HTTP resources: thin views over ``api.services``, under ``/api/v1``."""
from __future__ import annotations

from importlib import resources as package_files

import flask_swagger_ui
from flask import Flask, send_from_directory
from flask_smorest import Api

from .. import problems


class ProblemApi(Api):
    """flask-smorest, with RFC 9457 problem details for every error."""

    ERROR_SCHEMA = problems.ProblemSchema

    def handle_http_exception(self, error):
        return problems.handle_http_exception(error)


def register(app: Flask) -> None:
    from . import admin, auth, checks, devices, forms, meta, scans

    api = ProblemApi(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or device token"},
    }}, "security": [{"bearer": []}]})
    for blp in (auth.blp, admin.blp, devices.blp, forms.blp, scans.blp, checks.blp, meta.blp):
        api.register_blueprint(blp)
    app.extensions["openapi"] = api

    # Swagger UI's own files, shipped in the flask-swagger-ui wheel.
    assets = str(package_files.files(flask_swagger_ui) / "dist")
    app.add_url_rule(
        "/docs/assets/<path:filename>", "swagger_assets",
        lambda filename: send_from_directory(assets, filename),
    )
