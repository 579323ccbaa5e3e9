"""Passport data pages as a phone camera sees them, drawn deterministically.

``python -m tests.data.passports OUT_DIR`` writes them as JPEG files with a
``manifest.json`` (each file's two MRZ lines and how it was degraded); the
tests and ``make bench`` call :func:`pages` and get numpy arrays.

Each page is a TD3 data page (ICAO Doc 9303 part 4: 125 x 88 mm) drawn at
8 px/mm: a guilloche-like background, a photo-like block, printed labels
and values as on a real page ("Surname / Nom", "Date of birth" ...), and
the two-line machine-readable zone in OCR-B (Debian ``fonts-ocr-b``), 10
characters per 25.4 mm. The page is then held up to a 1280 x 720 camera:
put on a cluttered table, tilted in perspective, rotated a few degrees,
blurred, lit with a glare spot and given sensor noise. Every page has a
different holder, number, nationality and dates; check digits are computed
with :func:`shared.mrz.check_digit`, so every zone is valid.
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import asdict, dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from shared.mrz import check_digit

OCR_B = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")
PX_PER_MM = 8
PAGE = (125 * PX_PER_MM, 88 * PX_PER_MM)
FRAME = (1280, 720)


@dataclass(frozen=True)
class Holder:
    surname: str
    given_names: str
    number: str  # up to 9 characters
    state: str  # ICAO code of the issuing state (and nationality)
    birth: date
    sex: str
    expiry: date
    optional: str = ""  # personal number, up to 14 characters


HOLDERS = [
    Holder("CHEN", "MEI", "E12345678", "CHN", date(1988, 3, 14), "F", date(2034, 1, 1)),
    Holder("SMITH", "JOHN MICHAEL", "568432190", "USA", date(1979, 11, 2), "M", date(2031, 6, 30)),
    Holder("TANAKA", "AIKO", "TZ1234567", "JPN", date(1992, 6, 30), "F", date(2030, 9, 14)),
    Holder("KIM", "MIN JUN", "M70689012", "KOR", date(1985, 12, 24), "M", date(2033, 4, 2)),
    Holder("SHARMA", "PRIYA", "Z4821937", "IND", date(1990, 7, 8), "F", date(2032, 2, 17)),
    Holder("OLIVEIRA", "LUCAS GABRIEL", "FZ902381", "BRA", date(1975, 1, 19), "M", date(2029, 8, 8)),
    Holder("IVANOVA", "OLGA", "754103928", "RUS", date(1969, 10, 5), "F", date(2028, 12, 1)),
    Holder("OKAFOR", "CHIDI", "A09231845", "NGA", date(1983, 4, 22), "M", date(2030, 3, 3)),
    Holder("AL MANSOURI", "FATIMA", "N3829104", "ARE", date(1995, 2, 11), "F", date(2031, 11, 20),
           "784199512345"),
    Holder("BROWN", "OLIVIA GRACE", "PA7712093", "AUS", date(2001, 9, 1), "F", date(2035, 5, 5)),
    Holder("TREMBLAY", "ETIENNE", "HK492017", "CAN", date(1972, 8, 16), "M", date(2027, 7, 7)),
    Holder("MUELLER", "HANS PETER", "X2K8P4M71", "CHE", date(1966, 3, 3), "M", date(2032, 10, 10)),
    Holder("HANSEN", "INGRID", "31926658", "NOR", date(1998, 12, 12), "F", date(2029, 1, 31)),
    Holder("NGUYEN", "VAN AN", "C03948271", "VNM", date(1987, 5, 27), "M", date(2033, 8, 18)),
    Holder("YILMAZ", "AYSE", "U18273645", "TUR", date(1993, 11, 30), "F", date(2031, 4, 15),
           "12345678901"),
    Holder("GARCIA LOPEZ", "MARIA JOSE", "G40918273", "MEX", date(1980, 2, 29), "F", date(2030, 6, 6)),
    Holder("DLAMINI", "SIPHO", "A05566778", "ZAF", date(1977, 7, 17), "M", date(2028, 9, 9)),
    Holder("TAN", "WEI LING", "K1234567E", "SGP", date(1999, 1, 8), "F", date(2034, 12, 24)),
    Holder("SRISAI", "SOMCHAI", "AA8812345", "THA", date(1964, 6, 18), "M", date(2027, 2, 28)),
    Holder("HASSAN", "OMAR", "A12098765", "EGY", date(1991, 10, 10), "M", date(2032, 7, 1)),
    Holder("FERNANDEZ", "SOFIA", "AAF902183", "ARG", date(2003, 3, 21), "F", date(2036, 3, 20)),
    Holder("AL SAUD", "KHALID", "R80914", "SAU", date(1986, 9, 9), "M", date(2029, 5, 25)),
    Holder("WILLIAMS", "JAMES", "123987456", "GBR", date(1958, 4, 4), "M", date(2028, 8, 31)),
    Holder("SANTOSO", "DEWI", "B7736251", "IDN", date(1996, 8, 17), "F", date(2031, 1, 12)),
]


def _yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def zone(h: Holder) -> tuple[str, str]:
    """The two 44-character lines of ``h``'s TD3 zone, check digits included."""
    names = f"{h.surname}<<{h.given_names}".replace(" ", "<").replace("-", "<")
    line1 = f"P<{h.state}{names}"[:44].ljust(44, "<")
    number = h.number.ljust(9, "<")
    optional = h.optional.ljust(14, "<")
    optional_check = str(check_digit(optional)) if h.optional else "<"
    birth, expiry = _yymmdd(h.birth), _yymmdd(h.expiry)
    line2 = (f"{number}{check_digit(number)}{h.state}{birth}{check_digit(birth)}{h.sex}"
             f"{expiry}{check_digit(expiry)}{optional}{optional_check}")
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    return line1, line2 + str(check_digit(composite))


# --- drawing -------------------------------------------------------------------

@lru_cache(maxsize=None)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _label_font(size: int) -> ImageFont.FreeTypeFont:
    # Kivy's DejaVu Sans: a font every test machine has (found without
    # importing Kivy, which would start its logger).
    kivy = Path(importlib.util.find_spec("kivy").origin).parent
    return _font(str(kivy / "data" / "fonts" / "DejaVuSans.ttf"), size)


def _mrz_font() -> ImageFont.FreeTypeFont:
    """OCR-B sized so 44 characters span 44 x 2.54 mm."""
    if not OCR_B.exists():
        raise FileNotFoundError("no OCR-B font: install the Debian package fonts-ocr-b "
                                "(scripts/system-packages.sh)")
    pitch = 2.54 * PX_PER_MM
    size = 24
    while _font(str(OCR_B), size + 1).getlength("<" * 44) <= 44 * pitch:
        size += 1
    return _font(str(OCR_B), size)


def _page(h: Holder, rng: np.random.Generator, printed: tuple[str, str] | None = None) -> Image.Image:
    w, hgt = PAGE
    tint = tuple(int(v) for v in rng.integers(200, 245, 3))
    page = Image.new("RGB", PAGE, tint)
    draw = ImageDraw.Draw(page)
    # Guilloche-like background: thin wavy lines in a lighter tone.
    ink = tuple(max(0, c - 35) for c in tint)
    phase = rng.uniform(0, 6.3)
    for k in range(0, hgt, 9):
        points = [(x, k + 5 * math.sin(x / 37 + phase + k / 23)) for x in range(0, w, 8)]
        draw.line(points, fill=ink, width=1)
    # Header and the photo-like block: a face-shaped blob on a backdrop.
    draw.text((30, 18), "PASSPORT  PASSEPORT  PASAPORTE", font=_label_font(26), fill=(40, 40, 70))
    px, py, pw, ph = 30, 80, 250, 320
    backdrop = tuple(int(v) for v in rng.integers(120, 200, 3))
    draw.rectangle([px, py, px + pw, py + ph], fill=backdrop)
    skin = tuple(int(v) for v in rng.integers(110, 230, 3))
    draw.ellipse([px + 60, py + 50, px + 190, py + 210], fill=skin)
    draw.ellipse([px + 20, py + 200, px + 230, py + 420], fill=tuple(int(v) for v in rng.integers(20, 120, 3)))
    draw.ellipse([px + 55, py + 30, px + 195, py + 110], fill=tuple(int(v) for v in rng.integers(10, 90, 3)))
    # Labels and values, as printed on the page.
    fields = [
        ("Type / Type", "P"), ("Code / Code", h.state), ("Passport No. / No. du passeport", h.number),
        ("Surname / Nom", h.surname), ("Given names / Prénoms", h.given_names),
        ("Nationality / Nationalité", h.state),
        ("Date of birth / Date de naissance", h.birth.strftime("%d %b %Y").upper()),
        ("Sex / Sexe", h.sex), ("Date of expiry / Date d'expiration", h.expiry.strftime("%d %b %Y").upper()),
    ]
    x0, y = 310, 78
    small, value = _label_font(15), _label_font(24)
    for label, text in fields:
        draw.text((x0, y), label, font=small, fill=(70, 70, 90))
        draw.text((x0, y + 16), text, font=value, fill=(15, 15, 25))
        y += 46 if y < 440 else 40
    # The signature: a scribble.
    sig = [(px + 20 + i * 6, 430 + 10 * math.sin(i / 2.3)) for i in range(35)]
    draw.line(sig, fill=(30, 30, 120), width=2)
    # The machine-readable zone on a plain band, 4.2 mm between baselines.
    line1, line2 = printed or zone(h)
    font = _mrz_font()
    band_top = hgt - int(23 * PX_PER_MM)
    draw.rectangle([0, band_top, w, hgt], fill=tuple(min(255, c + 8) for c in tint))
    left = int(6 * PX_PER_MM)
    for i, line in enumerate((line1, line2)):
        draw.text((left, band_top + int((5.5 + i * 7.5) * PX_PER_MM)), line, font=font, fill=(10, 10, 10))
    return page


def _table(rng: np.random.Generator) -> np.ndarray:
    """A cluttered table top, BGR."""
    w, h = FRAME
    base = rng.integers(60, 170, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 0.75 + 0.25 * np.sin(xx / rng.uniform(90, 200)) * np.cos(yy / rng.uniform(70, 160))
    table = (base[None, None, :] * shade[:, :, None]).clip(0, 255).astype(np.uint8)
    for _ in range(12):  # things on the table
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(table, centre, int(rng.integers(10, 70)), colour, -1)
    return table


def camera_frame(h: Holder, index: int, take: int = 0,
                 printed: tuple[str, str] | None = None) -> tuple[np.ndarray, dict]:
    """``h``'s data page in a 1280 x 720 BGR camera frame, and how it was
    degraded. ``take`` > 0: another frame of the same page, as the camera's
    next frames are (held a little differently, other light and noise).
    ``printed``: other zone lines than ``h``'s (a forged or misprinted page)."""
    page = cv2.cvtColor(np.asarray(_page(h, np.random.default_rng(1000 + index), printed)), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng((1000 + index) * 100 + take)
    pw, ph = PAGE
    # Where the page lands: 78-90 % of the frame's height, tilted.
    scale = rng.uniform(0.78, 0.9) * FRAME[1] / ph
    angle = rng.uniform(-7, 7)
    tilt = rng.uniform(0.0, 0.09)  # perspective: one edge further from the lens
    cx, cy = FRAME[0] / 2 + rng.uniform(-20, 20), FRAME[1] / 2 + rng.uniform(-10, 10)
    corners = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    half = np.float32([[-pw / 2, -ph / 2], [pw / 2, -ph / 2], [pw / 2, ph / 2], [-pw / 2, ph / 2]]) * scale
    if rng.random() < 0.5:  # the top edge further away
        half[:2, 0] *= 1 - tilt
    else:  # the right edge further away
        half[1:3, 1] *= 1 - tilt
    rad = math.radians(angle)
    rot = np.float32([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    target = half @ rot.T + np.float32([cx, cy])
    matrix = cv2.getPerspectiveTransform(corners, target)
    frame = _table(rng)
    warped = cv2.warpPerspective(page, matrix, FRAME, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), matrix, FRAME)
    frame[mask > 0] = warped[mask > 0]
    # Light: a glare spot somewhere on the page, an overall brightness.
    gx, gy = target[:, 0].mean() + rng.uniform(-300, 300), target[:, 1].mean() + rng.uniform(-200, 200)
    radius = rng.uniform(90, 200)
    strength = rng.uniform(40, 110)
    yy, xx = np.mgrid[0:FRAME[1], 0:FRAME[0]].astype(np.float32)
    glare = strength * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius ** 2))
    gain = rng.uniform(0.75, 1.1)
    lit = frame.astype(np.float32) * gain + glare[:, :, None]
    # Focus and the sensor: a little blur, then noise.
    blur = float(rng.uniform(0.4, 1.5))
    lit = cv2.GaussianBlur(lit, (0, 0), blur)
    noise = float(rng.uniform(3, 9))
    lit += rng.normal(0, noise, lit.shape).astype(np.float32)
    frame = lit.clip(0, 255).astype(np.uint8)
    how = {"scale": round(float(scale), 3), "angle": round(angle, 1), "tilt": round(float(tilt), 3),
           "blur_sigma": round(blur, 2), "noise_sigma": round(noise, 1),
           "glare": round(float(strength), 0), "gain": round(float(gain), 2)}
    return frame, how


@dataclass(frozen=True)
class Page:
    name: str
    holder: Holder
    lines: tuple[str, str]
    frame: np.ndarray  # BGR, 1280 x 720
    degraded: dict

    @property
    def zone(self) -> str:
        return "\n".join(self.lines)


def pages(count: int | None = None, take: int = 0) -> list[Page]:
    """The data pages of the first ``count`` holders (all by default), as
    camera frame number ``take``."""
    out = []
    for i, h in enumerate(HOLDERS[:count]):
        frame, how = camera_frame(h, i, take)
        out.append(Page(f"passport{i:02d}" + (f"-{take}" if take else ""), h, zone(h), frame, how))
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "passports")
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for page in pages():
        cv2.imwrite(str(out / f"{page.name}.jpg"), page.frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        holder = {k: str(v) for k, v in asdict(page.holder).items()}
        manifest.append({"file": f"{page.name}.jpg", "mrz": list(page.lines), "holder": holder,
                         "degraded": page.degraded})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{len(manifest)} pages in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
