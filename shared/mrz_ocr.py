"""Reading a passport's machine-readable zone from a camera frame.

An :class:`MrzReader` looks at one frame (numpy, greyscale or BGR, from the
frame sources of :mod:`shared.scanning`) and returns the zone's two lines
only when :func:`shared.mrz.parse_td3` accepts them, i.e. every ICAO 9303
check digit holds. It has the decoder interface of ``shared.scanning``
(``decode(frame) -> [Code]``), so a :class:`~shared.scanning.ScanLoop`
runs it on a worker thread like a QR decoder.

How a frame is read (:class:`TesseractMrzReader`):

1. *Find the zone*: dark-on-light strokes (black-hat), their vertical edges,
   smeared along the line; two long, parallel, equally long text lines next
   to each other are the zone (labels and values on the page are short).
2. *Cut each line into its 44 characters*: every cell of a zone has ink
   (fillers are ``<``) and OCR-B characters do not touch: a line with other
   than 44 blobs of ink is not read.
3. *Read each line* with Tesseract and the ``mrz`` model trained for the
   zone's alphabet in OCR-B (``shared/tessdata``, made by
   ``scripts/train-mrz-ocr.sh`` from random text, not from any test page).
   Each line is read twice, scaled to two sizes; every character Tesseract
   finds must sit on one of the 44 cells. Per cell, of the choices Tesseract
   offers, only those the field may hold count (digits in dates, letters in
   names and states, M/F/X/< for the sex ...), and every choice within
   :data:`MARGIN` of the best, in either read, stays a candidate.
4. *Tell fillers from characters* by shape too: line 1's second cell is
   always ``<``, and a cell much like it must be ``<``, one unlike it must
   not be.
5. *Decide*: where no check digit protects a character (line 1: names and
   issuing state; the nationality, the sex), it must have one candidate.
   Elsewhere a few cells may have two (O or 0, 3 or 5): of every way to
   fill them, exactly one must pass every check digit. Two that both pass
   (G and 6 weigh the same) is no read. The issuing state and nationality
   must be known ICAO codes. Anything else is no read: the next camera
   frame is another chance.

Tesseract comes from the maintained ``tesserocr`` binding (its wheel carries
libtesseract); the model is this package's data, so no Debian language
package is needed at run time. Nothing here imports Kivy.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from . import mrz
from .scanning import Code, grey

FORMAT = "MRZ"  # the Code.format of a zone read by OCR
CELLS = mrz.LINE_LENGTH
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
ALPHANUMERIC = LETTERS + DIGITS

# The trained model (legacy engine: one font, shapes learnt from OCR-B).
MODEL_DIR = Path(__file__).parent / "tessdata"
MODEL = "mrz"

# What each cell may hold (ICAO 9303 part 4, TD3).
# Line 1: P, then the subtype or <, the issuing state and the names.
LINE1_FIELDS = ("P",) + (LETTERS + "<",) * (CELLS - 1)
# Line 2: document number (a longer one puts < in its check digit's place),
# nationality, birth date and check, sex, expiry and check, optional data,
# its check (< when there is none) and the composite check.
LINE2_FIELDS = ((ALPHANUMERIC + "<",) * 9 + (DIGITS + "<",) + (LETTERS + "<",) * 3 + (DIGITS,) * 7
                + ("MFX<",) + (DIGITS,) * 7 + (ALPHANUMERIC + "<",) * 14 + (DIGITS + "<", DIGITS))
# Line 2's cells no check digit covers: the nationality and the sex.
LINE2_UNCHECKED = frozenset({10, 11, 12, 20})

# Line heights (pixels, with the margins) the lines are read at: capitals
# about 30 and 37 pixels high, the sizes the model was trained on.
READ_HEIGHTS = (90, 110)
# Tesseract's confidence points: a choice this close to the best one is a
# candidate too.
MARGIN = 5.0
# A cell whose best choice overall is not allowed in its field must have
# an allowed choice this close to it, or the read is noise.
DISALLOWED_LEAD = 15.0
# Cells with two candidates that check digits may settle, at most.
MAX_AMBIGUOUS = 4
# Shape likeness to line 1's filler (normalised correlation): from FILLER
# up a cell must be "<", below NOT_FILLER it cannot be; between, Tesseract says.
FILLER = 0.75
NOT_FILLER = 0.6


@dataclass(frozen=True)
class MrzRead:
    """A zone that passed every check, and how long the read took."""

    lines: tuple[str, str]
    passport: mrz.Passport
    seconds: float

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class MrzReader(Protocol):
    """Reads a passport zone from camera frames."""

    def read(self, frame: np.ndarray) -> MrzRead | None:
        """The verified zone in ``frame``, or None (none found, or not every check held)."""

    def decode(self, frame: np.ndarray) -> list[Code]:
        """:meth:`read` in the shape of a ``shared.scanning`` decoder."""


def model_dir() -> Path:
    """Where the ``mrz`` model is (``MRZ_TESSDATA`` first, to try another)."""
    path = Path(os.environ.get("MRZ_TESSDATA") or MODEL_DIR)
    if not (path / f"{MODEL}.traineddata").exists():
        raise FileNotFoundError(f"no {MODEL}.traineddata in {path}: scripts/train-mrz-ocr.sh makes it")
    return path


# --- geometry ------------------------------------------------------------------

@dataclass(frozen=True)
class _Line:
    """A long text line: centre, length and thickness (full-frame pixels), angle in degrees."""

    cx: float
    cy: float
    length: float
    thickness: float
    angle: float


def find_lines(frame_grey: np.ndarray, width: int = 640) -> list[_Line]:
    """Long, thin runs of characters in the frame (candidate zone lines)."""
    import cv2

    scale = width / frame_grey.shape[1]
    small = cv2.resize(frame_grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    strokes = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 5)))
    edges = np.abs(cv2.Sobel(strokes, cv2.CV_32F, 1, 0, ksize=-1))
    edges = cv2.normalize(edges, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    edges = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (15, 3)))
    _, mask = cv2.threshold(edges, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (11, 1)))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines = []
    for contour in contours:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if angle > 45:  # OpenCV's angle is in (0, 90]: make the long side horizontal
            angle, w, h = angle - 90, h, w
        elif angle < -45:
            angle, w, h = angle + 90, h, w
        if w > 0.3 * small.shape[1] and w > 12 * max(h, 1):
            lines.append(_Line(cx / scale, cy / scale, w / scale, h / scale, angle))
    return lines


def zone_lines(lines: list[_Line]) -> tuple[_Line, _Line] | None:
    """The two lines of a zone: parallel, about as long as each other, one
    just under the other; of several such pairs, the longest."""
    best = None
    for a in lines:
        for b in lines:
            if b.cy <= a.cy or a is b:
                continue
            gap = b.cy - a.cy
            similar = abs(a.length - b.length) < 0.2 * max(a.length, b.length)
            parallel = abs(a.angle - b.angle) < 4
            close = gap < 0.12 * a.length and gap > 1.2 * max(a.thickness, b.thickness)
            aligned = abs(a.cx - b.cx) < 0.15 * a.length
            if similar and parallel and close and aligned:
                if best is None or a.length + b.length > best[0].length + best[1].length:
                    best = (a, b)
    return best


def _straighten(frame_grey: np.ndarray, line: _Line, pad: float) -> np.ndarray:
    """The line cut out of the frame, rotated level, with ``pad`` x its
    thickness of margin above and below and one thickness left and right."""
    import cv2

    margin_x, margin_y = line.thickness * 1.2, line.thickness * pad
    w, h = int(line.length + 2 * margin_x), int(line.thickness + 2 * margin_y)
    matrix = cv2.getRotationMatrix2D((line.cx, line.cy), line.angle, 1.0)
    matrix[0, 2] += w / 2 - line.cx
    matrix[1, 2] += h / 2 - line.cy
    return cv2.warpAffine(frame_grey, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def even_light(image: np.ndarray) -> np.ndarray:
    """``image`` with glare and shadow divided out: paper about white
    everywhere, ink dark (strokes must be thinner than 15 pixels)."""
    import cv2

    background = cv2.morphologyEx(image, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15)))
    return cv2.divide(image, background, scale=255)


def _ink(strip: np.ndarray) -> np.ndarray:
    """Dark strokes as 255, paper as 0 (Otsu after evening out the light)."""
    import cv2

    _, ink = cv2.threshold(even_light(strip), 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return ink


@dataclass
class _Cells:
    """A straightened line and where its 44 characters are."""

    strip: np.ndarray  # greyscale, level
    boxes: list[tuple[int, int, int, int]]  # each character's ink: x0, y0, x1, y1
    pitch: float  # the median distance between neighbours
    top: int
    bottom: int

    @property
    def centres(self) -> np.ndarray:
        return np.array([(x0 + x1) / 2 for x0, _, x1, _ in self.boxes])

    def patch(self, i: int, size: tuple[int, int] = (16, 16)) -> np.ndarray:
        """Character ``i``'s ink box, scaled and normalised for comparing
        shapes whatever the local size (a tilted page shrinks one end)."""
        import cv2

        x0, y0, x1, y1 = self.boxes[i]
        cell = self.strip[y0:y1, x0:x1]
        cell = cv2.resize(cell, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        cell -= cell.mean()
        norm = np.linalg.norm(cell)
        return cell / norm if norm else cell


def cells_of(frame_grey: np.ndarray, line: _Line) -> _Cells | None:
    """The 44 characters of a zone line, or None if its ink is not 44 of them.

    Every cell of a zone has ink (fillers are ``<``) and OCR-B characters do
    not touch, so each is one connected blob of ink (a blob broken in two is
    joined again by its overlap in x). Their positions are measured, not
    assumed: a page tilted away from the lens has a pitch that shrinks along
    the line.
    """
    import cv2

    strip = _straighten(frame_grey, line, pad=1.0)
    ink = _ink(strip)
    rows = np.flatnonzero(ink.sum(axis=1) > 0.08 * 255 * ink.shape[1])
    if rows.size < 3:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    blobs = sorted((x, y, x + w, y + h) for x, y, w, h, area in stats[1:count]
                   if h > 0.3 * (bottom - top) and area > 6 and y < bottom and y + h > top)
    merged: list[list[int]] = []
    for x0, y0, x1, y1 in blobs:
        if merged and x0 < merged[-1][2] - 1:
            last = merged[-1]
            merged[-1] = [min(last[0], x0), min(last[1], y0), max(last[2], x1), max(last[3], y1)]
        else:
            merged.append([x0, y0, x1, y1])
    if len(merged) != CELLS:
        return None
    boxes = [tuple(box) for box in merged]
    pitch = float(np.median(np.diff([(b[0] + b[2]) / 2 for b in boxes])))
    if pitch < 4:
        return None
    return _Cells(strip, boxes, pitch, top, bottom)


# --- reading ---------------------------------------------------------------------

def _known_state(code: str) -> bool:
    code = code.replace("<", "")
    return code in mrz._ICAO_SPECIAL or mrz.country_of(code) is not None


def verified(line1: str, line2: str) -> mrz.Passport | None:
    """The passport if the zone passes every check, else None."""
    try:
        passport = mrz.parse_td3(f"{line1}\n{line2}")
    except mrz.MrzError:
        return None
    if not (_known_state(passport.issuing_state) and _known_state(passport.nationality_code)):
        return None
    return passport


class TesseractMrzReader:
    """Reads TD3 zones with Tesseract and the trained ``mrz`` model (see the
    module's description).

    One Tesseract engine per reader, used under a lock: give each thread
    that reads at the same time its own reader.
    """

    def __init__(self, tessdata: str | Path | None = None):
        import tesserocr

        self._tesserocr = tesserocr
        self._api = tesserocr.PyTessBaseAPI(path=str(tessdata or model_dir()) + os.sep, lang=MODEL,
                                            psm=tesserocr.PSM.SINGLE_LINE, oem=tesserocr.OEM.TESSERACT_ONLY)
        # No learning from one frame to the next: a read depends on its frame only.
        self._api.SetVariable("classify_enable_learning", "0")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._api.End()

    def decode(self, frame: np.ndarray) -> list[Code]:
        found = self.read(frame)
        return [Code(found.text, FORMAT)] if found else []

    def read(self, frame: np.ndarray) -> MrzRead | None:
        started = time.perf_counter()
        image = grey(frame)
        pair = zone_lines(find_lines(image))
        if pair is None:
            return None
        cells = [cells_of(image, line) for line in pair]
        if None in cells:
            return None
        filler = cells[0].patch(1)
        first = self._candidates(cells[0], filler, LINE1_FIELDS)
        second = self._candidates(cells[1], filler, LINE2_FIELDS)
        if first is None or second is None:
            return None
        found = _decide(first, second)
        if found is None:
            return None
        line1, line2, passport = found
        return MrzRead((line1, line2), passport, time.perf_counter() - started)

    def _candidates(self, cells: _Cells, filler: np.ndarray, fields: tuple[str, ...]) -> list[str] | None:
        """Each cell's candidate characters as a string, or None if a cell
        has no choice its field allows (or Tesseract's best is far from one)."""
        allowed = []
        for i, field in enumerate(fields):
            likeness = float((cells.patch(i) * filler).sum())
            if likeness >= FILLER:
                if "<" not in field:
                    return None  # a filler where the format has none
                field = "<"
            elif likeness < NOT_FILLER:
                field = field.replace("<", "")
            allowed.append(field)
        candidates = [""] * CELLS
        for height in READ_HEIGHTS:
            choices = self._choices(cells, height)
            if choices is None:
                return None
            for i, (cell, field) in enumerate(zip(choices, allowed)):
                fitting = [(char, confidence) for char, confidence in cell if char in field]
                if not fitting or cell[0][1] - fitting[0][1] > DISALLOWED_LEAD:
                    return None
                best = fitting[0][1]
                for char, confidence in fitting:
                    if best - confidence < MARGIN and char not in candidates[i]:
                        candidates[i] += char
        return candidates

    def _choices(self, cells: _Cells, height: int) -> list[list[tuple[str, float]]] | None:
        """Tesseract's choices (character, confidence; best first) for each
        of the 44 cells, the line read at ``height`` pixels; None unless
        every cell has exactly one character on it."""
        import cv2
        from PIL import Image

        scale = height / cells.strip.shape[0]
        image = even_light(cv2.resize(cells.strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
        centres = cells.centres * scale
        reach = cells.pitch * scale / 2
        found: list[list[tuple[str, float]] | None] = [None] * CELLS
        level = self._tesserocr.RIL.SYMBOL
        with self._lock:
            self._api.SetImage(Image.fromarray(image))
            self._api.Recognize()
            for symbol in self._tesserocr.iterate_level(self._api.GetIterator(), level):
                box = symbol.BoundingBox(level)
                if box is None:
                    continue
                centre = (box[0] + box[2]) / 2
                k = int(np.argmin(np.abs(centres - centre)))
                if abs(centres[k] - centre) > reach or found[k] is not None:
                    return None  # between two cells, or two characters on one
                found[k] = [(choice.GetUTF8Text(), choice.Confidence()) for choice in symbol.GetChoiceIterator()]
        if any(cell is None for cell in found):
            return None
        return found  # type: ignore[return-value]


def _decide(first: list[str], second: list[str]) -> tuple[str, str, mrz.Passport] | None:
    """The zone from each cell's candidates, or None: line 1 and line 2's
    unchecked cells must have one candidate each; of the ways to fill line
    2's other ambiguous cells exactly one must pass every check."""
    if any(len(c) != 1 for c in first) or any(len(second[i]) != 1 for i in LINE2_UNCHECKED):
        return None
    line1 = "".join(first)
    ambiguous = [i for i, c in enumerate(second) if len(c) > 1]
    if len(ambiguous) > MAX_AMBIGUOUS:
        return None
    passing = []
    for filling in itertools.product(*(second[i] for i in ambiguous)):
        line2 = [c[0] for c in second]
        for i, char in zip(ambiguous, filling):
            line2[i] = char
        passport = verified(line1, "".join(line2))
        if passport is not None:
            passing.append(("".join(line2), passport))
    if len(passing) != 1:
        return None
    return line1, *passing[0]


class AgreeingReads:
    """A decoder that reports a zone once ``frames`` camera frames have read
    it the same (OCR errors that pass every check digit are rare and do not
    repeat frame after frame). Wraps another reader's ``read``."""

    def __init__(self, reader: MrzReader, frames: int = 2):
        self.reader = reader
        self.frames = frames
        self._seen: dict[str, int] = {}

    def decode(self, frame: np.ndarray) -> list[Code]:
        found = self.reader.read(frame)
        if found is None:
            return []
        self._seen[found.text] = self._seen.get(found.text, 0) + 1
        if self._seen[found.text] < self.frames:
            return []
        self._seen.clear()
        return [Code(found.text, FORMAT)]

    def clear(self) -> None:
        self._seen.clear()
