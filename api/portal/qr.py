"""A form's QR code as inline SVG for the pages.

Inline SVG needs no second request, no ``data:`` URI in the
Content-Security-Policy, and prints sharp at any size. The code carries the
same signed payload, with the same error correction, as the API's
``/forms/{id}/qr.png``.
"""
from __future__ import annotations

import qrcode
from markupsafe import Markup

QUIET_ZONE = 4  # modules of white around the code, as the QR standard asks


def qr_svg(payload: str, label: str) -> Markup:
    """An ``<svg>`` element drawing ``payload``; ``label`` is its accessible name."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_ZONE)
    code.add_data(payload)
    code.make(fit=True)
    matrix = code.get_matrix()  # includes the quiet zone
    size = len(matrix)
    # One path of unit squares; horizontal runs are merged to keep it short.
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return Markup(
        '<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" '
        'shape-rendering="crispEdges" role="img" aria-label="{label}">'
        '<rect width="{n}" height="{n}" fill="#fff"/><path fill="#000" d="{d}"/></svg>'
    ).format(n=size, label=label, d="".join(parts))
