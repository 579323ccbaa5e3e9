"""HTTP resources: thin views over ``api.services``, under ``/api/v1``."""
from __future__ import annotations

import http
from importlib import resources as package_files

import flask_swagger_ui
from flask import Flask, send_from_directory
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from .. import problems


class ProblemApi(Api):
    """flask-smorest, with RFC 9457 problem details for every error."""

    ERROR_SCHEMA = problems.ProblemSchema

    def handle_http_exception(self, error):
        return problems.handle_http_exception(error)

    def _register_responses(self):
        """Error responses documented as application/problem+json, the
        media type they are sent with (flask-smorest assumes JSON)."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Problem details (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, problems.MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def register(app: Flask) -> None:
    from . import admin, auth, checks, devices, duty, forms, meta, metrics, scans, status, traveller, webhooks

    api = ProblemApi(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or device token"},
    }}, "security": [{"bearer": []}]})
    for blp in (auth.blp, admin.blp, devices.blp, forms.blp, scans.blp, checks.blp, duty.blp, meta.blp,
                webhooks.blp, status.blp, traveller.blp, traveller.desk, metrics.blp):
        api.register_blueprint(blp)
    app.extensions["metrics_networks"] = metrics.allowed_networks(app.config["METRICS_ALLOWED_NETWORKS"])
    # What a webhook delivery's body looks like (sent, not served).
    from ..schemas import WebhookEvent

    api.spec.components.schema("WebhookEvent", schema=WebhookEvent)
    app.extensions["openapi"] = api

    # Swagger UI's own files, shipped in the flask-swagger-ui wheel.
    assets = str(package_files.files(flask_swagger_ui) / "dist")
    app.add_url_rule(
        "/docs/assets/<path:filename>", "swagger_assets",
        lambda filename: send_from_directory(assets, filename),
    )
