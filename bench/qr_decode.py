"""3. QR decoding on the fixed corpus of 40 camera-like frames.

Plain: ``zxingcpp.read_barcodes(grey, formats=QRCode)`` on a greyscale
array prepared beforehand (zxing-cpp's other defaults; all formats instead
of QR only would cost about 6x more). Pipeline: what the kiosk does with each camera frame,
from the colour frame (BGR, as OpenCV cameras deliver it) to a judged
payload: greyscale -> decode (``shared.scanning.Decoder`` when that module
exists) -> signature check (``shared.qrtoken.verify_form_token``). Both run
on the same frames, interleaved frame by frame, several passes; per pass the
median and p99 over the 40 frames, and the ratio pipeline/plain.

The frames' payloads are fixtures signed by a key nobody has (and their
signature part is not even valid base64), so every check refuses them; the
key set holds a key under the frames' ``kid`` so the check runs as far as it
can. Reads are counted by text match against the manifest. The cost of a
full Ed25519 verification of a genuine token is measured beside it.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image

import harness
from shared import qrtoken


def frames_dir() -> Path:
    return harness.ROOT / "tests" / "data" / "frames"


def _keyset_with(kid: str) -> qrtoken.KeySet:
    return qrtoken.KeySet({"keys": [qrtoken.public_jwk(qrtoken.new_private_key(), kid)]})


def _pipeline():
    """(decode(bgr) -> [text], description) for the kiosk's decoder."""
    try:
        from shared import scanning
    except ImportError:
        scanning = None
    if scanning is not None and hasattr(scanning, "Decoder"):
        decoder = scanning.Decoder(scanning.QR)
        return (lambda bgr: [c.text for c in decoder.decode(bgr)],
                "shared.scanning.Decoder(QR) on the BGR frame (its own greyscale conversion)")
    weights = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # B, G, R

    def decode(bgr):
        grey = (bgr.astype(np.float32) @ weights).astype(np.uint8)
        return [b.text for b in zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)]

    return decode, "shared.scanning not there yet: numpy greyscale + zxing-cpp (QR only)"


def run(passes: int = 5) -> dict:
    directory = frames_dir()
    manifest = json.loads((directory / "manifest.json").read_text())
    frames = []
    for entry in manifest:
        image = Image.open(directory / entry["file"])
        rgb = np.asarray(image.convert("RGB"))
        frames.append({"file": entry["file"], "text": entry["text"],
                       "grey": np.asarray(image.convert("L")),
                       "bgr": np.ascontiguousarray(rgb[:, :, ::-1])})
    kids = {json.loads(__import__("base64").urlsafe_b64decode(e["text"].split(".")[0] + "==")).get("kid")
            for e in manifest if e["text"]}
    keys = _keyset_with(sorted(kids)[0])
    decode, description = _pipeline()

    def plain(frame):
        return [b.text for b in zxingcpp.read_barcodes(frame["grey"], formats=zxingcpp.BarcodeFormat.QRCode)]

    def pipeline(frame):
        texts = decode(frame["bgr"])
        for text in texts:
            try:
                qrtoken.verify_form_token(text, keys)
            except qrtoken.TokenRefused as refusal:
                reasons[refusal.reason_code] = reasons.get(refusal.reason_code, 0) + 1
        return texts

    reasons: dict[str, int] = {}
    per_pass = {"plain": [], "pipeline": []}
    reads = {}
    for p in range(passes + 1):  # pass 0 warms up and is not counted
        times = {"plain": [], "pipeline": []}
        # Alternate which one goes first, so neither always meets warm caches.
        order = (("plain", plain), ("pipeline", pipeline))
        for frame in frames:
            for name, fn in order if p % 2 else order[::-1]:
                t = time.perf_counter()
                texts = fn(frame)
                times[name].append((time.perf_counter() - t) * 1000)
                if p == 0:
                    reads.setdefault(name, []).append((frame["text"], texts))
        if p:
            for name in times:
                per_pass[name].append({"median": harness.percentile(times[name], 50),
                                       "p99": harness.percentile(times[name], 99)})

    def counts(pairs):
        read = sum(1 for expected, texts in pairs if expected and expected in texts)
        false = sum(1 for expected, texts in pairs for t in texts if t != expected)
        return {"codes": sum(1 for e, _ in pairs if e), "read": read, "false_positives": false}

    # A genuine token of the same kind, verified in full, for comparison.
    private = qrtoken.new_private_key()
    genuine_keys = qrtoken.KeySet({"keys": [qrtoken.public_jwk(private, "bench")]})
    token = qrtoken.sign_form_token("NL7KQ3X9PD", "NL859559001B01",
                                    datetime.now(timezone.utc) + timedelta(days=60), private, "bench")
    t = time.perf_counter()
    for _ in range(500):
        qrtoken.verify_form_token(token, genuine_keys)
    verify_us = (time.perf_counter() - t) / 500 * 1e6

    result = {"pipeline_kind": description, "frames": len(frames), "passes": passes,
              "signature_check_outcomes_per_pass": {k: v // (passes + 1) for k, v in reasons.items()},
              "full_ed25519_verify_us": verify_us}
    for name in ("plain", "pipeline"):
        result[name] = {"median_ms": harness.spread(x["median"] for x in per_pass[name]),
                        "p99_ms": harness.spread(x["p99"] for x in per_pass[name]),
                        **counts(reads[name])}
    result["ratio_median"] = harness.ratios([x["median"] for x in per_pass["pipeline"]],
                                            [x["median"] for x in per_pass["plain"]])
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
