"""GET /metrics: the Prometheus scrape, for the monitoring system only."""
from __future__ import annotations

import hmac
import ipaddress
from zoneinfo import ZoneInfo

from flask import Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from .. import database
from ..models import utcnow
from ..observability import metrics
from ..observability.collector import DatabaseCollector
from ..problems import Problem
from .blueprint import Blueprint

blp = Blueprint("metrics", __name__, url_prefix="/", description="Monitoring")


def allowed_networks(setting: str) -> list:
    """The METRICS_ALLOWED_NETWORKS setting as networks (a bad entry fails
    at start-up)."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip()]


def _admit() -> None:
    """A scraper sends the metrics token, or comes from an allowed network."""
    config = current_app.config
    token = config["METRICS_TOKEN"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    networks = current_app.extensions["metrics_networks"]
    if networks and request.remote_addr:
        try:
            address = ipaddress.ip_address(request.remote_addr)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in networks):
            return
    if token:
        raise Problem(401, "unauthorized", "Send the metrics token as a bearer token.",
                      headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    raise Problem(403, "forbidden", "Metrics are not served to this address.")


@blp.get("/metrics")
@blp.response(200, description="Prometheus text exposition format", content_type="text/plain")
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(403, response="FORBIDDEN")
@blp.doc(security=[{"bearer": []}, {}])
def scrape():
    """The API's metrics for Prometheus: requests per route and status with
    their latency, verdicts per exit point and channel, the officers'
    queue, the webhook backlog, database errors and connections, and each
    device's last heartbeat. For a scraper holding METRICS_TOKEN or coming
    from METRICS_ALLOWED_NETWORKS only."""
    _admit()
    config = current_app.config
    collector = DatabaseCollector(database.session(), utcnow(), config["FLEET"],
                                  ZoneInfo(config["RULESET"].timezone))
    return Response(metrics.exposition(collector), mimetype=None,
                    headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
