"""Blurs a text2image page the way a phone camera blurs a passport zone.

``python scripts/mrz_training_images.py IN_BASE OUT_BASE SEED`` reads
``IN_BASE.tif`` and ``IN_BASE.box`` (text2image's page and character
boxes, rendered small: capitals 12-18 pixels high, as the camera sees a
zone), blurs it, lights it unevenly and adds sensor noise, then scales it
up and evens out the light as :class:`shared.mrz_ocr.TesseractMrzReader`
does before reading, and writes ``OUT_BASE.tif`` with the boxes scaled to
match. Tesseract then learns the shapes it will be shown, not crisp print.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

UPSCALE = 2.0  # about what the reader's scaling does to a zone line


def degrade(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = page.shape
    image = page.astype(np.float32)
    # Paper is not white and ink is not black; the light falls off across.
    paper, ink = rng.uniform(170, 250), rng.uniform(0, 70)
    image = ink + (paper - ink) * image / 255
    ramp = np.linspace(rng.uniform(-40, 0), rng.uniform(0, 40), w, dtype=np.float32)
    image += ramp[None, :]
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    image += rng.normal(0, rng.uniform(2, 8), image.shape).astype(np.float32)
    image = image.clip(0, 255).astype(np.uint8)
    image = cv2.resize(image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    from shared.mrz_ocr import even_light
    return even_light(image)


def main(argv: list[str]) -> int:
    source, target, seed = argv[0], argv[1], int(argv[2])
    ok, pages = cv2.imreadmulti(source + ".tif", flags=cv2.IMREAD_GRAYSCALE)
    if not ok or len(pages) != 1:
        raise SystemExit(f"{source}.tif: expected one page")
    rng = np.random.default_rng(seed)
    cv2.imwrite(target + ".tif", degrade(pages[0], rng))
    with open(source + ".box") as boxes, open(target + ".box", "w") as out:
        for row in boxes:
            char, *numbers = row.split(" ")
            x0, y0, x1, y1, page = (int(v) for v in numbers)
            scaled = (round(v * UPSCALE) for v in (x0, y0, x1, y1))
            out.write(" ".join([char, *map(str, scaled), str(page)]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
