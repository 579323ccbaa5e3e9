"""4. Scan to verdict on the kiosk path, over loopback.

For each traveller: a form freshly issued through POST /api/v1/forms, its QR
code drawn into a 1280x720 camera-like colour frame (not timed). Timed: the
kiosk's decode of that frame, the signature check with the keys fetched from
/.well-known/jwks.json (cached, as kiosks do), POST /api/v1/scans, and
reading the verdict. The kiosk's screen update is not included (see the
results note). One traveller at a time, as at a kiosk.
"""
from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import qrcode
import requests
from PIL import Image

import harness
import qr_decode
from shared import qrtoken


def _frame(payload: str) -> np.ndarray:
    """A BGR frame with the form's QR code at about 4 px per module on a grey
    background, like a form held in front of the kiosk camera."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=4)
    code.add_data(payload)
    code.make(fit=True)
    image = code.make_image().get_image().convert("RGB")
    frame = Image.new("RGB", (1280, 720), (128, 124, 118))
    frame.paste(image, (420, 160))
    return np.ascontiguousarray(np.asarray(frame)[:, :, ::-1])


def _client(base: str, device_token: str):
    """post(payload) -> verdict: the kiosk's API client if it exists yet."""
    try:
        from shared.client import KioskClient
    except ImportError:
        KioskClient = None
    if KioskClient is not None:
        client = KioskClient(base, device_token)
        return (lambda payload: client.scan(payload).verdict), "shared.client.KioskClient.scan"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {device_token}"

    def post(payload):
        response = session.post(base + "/api/v1/scans", json={"qr_payload": payload}, timeout=10)
        response.raise_for_status()
        return response.json()["verdict"]

    return post, "requests.Session POST /api/v1/scans (shared.client not there yet)"


def _issue(session: requests.Session, base: str, n: int, tag: str) -> list[str]:
    purchase = (date.today() - timedelta(days=1)).isoformat()
    payloads = []
    for i in range(n):
        body = {"invoice_number": f"{tag}-{i}", "purchase_date": purchase,
                "traveller": {"first_name": "Anna", "last_name": "Eriksson",
                              "passport_number": f"K{tag}{i:06d}".upper(), "passport_country": "US",
                              "nationality": "US", "residence_country": "US",
                              "date_of_birth": "1974-08-12"},
                "items": [{"description": "Wool coat", "quantity": 1, "unit_price_cents": 12100,
                           "vat_rate": 21, "category": "clothing"}]}
        response = session.post(base + "/api/v1/forms", json=body, timeout=10)
        response.raise_for_status()
        payloads.append(response.json()["qr_payload"])
    return payloads


def run(base: str, world, runs: int = 3, per_run: int = 100) -> dict:
    shop = requests.Session()
    shop.headers["Authorization"] = f"Bearer {world.shop_token}"
    keys = qrtoken.KeySet(requests.get(base + "/.well-known/jwks.json", timeout=10).json())
    decode, decoder_kind = qr_decode._pipeline()
    post, client_kind = _client(base, world.device_token)
    totals, parts, verdicts = [], {"decode": [], "verify": [], "request": []}, {}
    for r in range(runs):
        frames = [_frame(p) for p in _issue(shop, base, per_run, f"SV{r}{int(time.time()) % 100000}")]
        times = []
        for frame in frames:
            t0 = time.perf_counter()
            texts = decode(frame)
            t1 = time.perf_counter()
            claims = qrtoken.verify_form_token(texts[0], keys)
            t2 = time.perf_counter()
            verdict = post(texts[0])
            t3 = time.perf_counter()
            assert claims.form_id
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            times.append((t3 - t0) * 1000)
            parts["decode"].append((t1 - t0) * 1000)
            parts["verify"].append((t2 - t1) * 1000)
            parts["request"].append((t3 - t2) * 1000)
        totals.append({"median": harness.percentile(times, 50), "p99": harness.percentile(times, 99)})
    return {
        "decoder": decoder_kind, "client": client_kind, "runs": runs, "per_run": per_run,
        "median_ms": harness.spread(t["median"] for t in totals),
        "p99_ms": harness.spread(t["p99"] for t in totals),
        "parts_median_ms": {k: harness.percentile(v, 50) for k, v in parts.items()},
        "verdicts": verdicts,
    }
