"""The pairing QR code that provisions a kiosk or handheld without typing.

An operator prints it with ``flask --app api pair-device``; the device scans
it, learns where the API is and exchanges the one-time code for its device
token.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

SCHEME = "taxfree-pair"


@dataclass(frozen=True)
class Pairing:
    api_url: str
    code: str


def pairing_text(api_url: str, code: str) -> str:
    """The text of the pairing QR code."""
    return f"{SCHEME}://device?{urlencode({'api': api_url, 'code': code})}"


def parse_pairing(text: str) -> Pairing | None:
    """The pairing a scanned text holds, or None if it is not a pairing code."""
    parts = urlsplit(text.strip())
    if parts.scheme != SCHEME or parts.netloc != "device":
        return None
    query = parse_qs(parts.query)
    api, code = query.get("api", [""])[0], query.get("code", [""])[0]
    if not api.startswith(("http://", "https://")) or not code:
        return None
    return Pairing(api_url=api.rstrip("/"), code=code)
