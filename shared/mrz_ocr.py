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
3. *Tell fillers from characters*: line 1's second cell is always ``<``
   (``P<`` for a passport, or the subtype); every cell is compared with it.
   Tesseract's English model reads letters and digits well but turns long
   ``<<<<`` runs into ``KKKK`` of the wrong length, so it never sees them.
4. *Read the runs between fillers* with Tesseract, one field group at a
   time with only the characters the group may hold (letters for states
   and names, digits and M/F/X for the dates and sex ...). Each run is read
   twice (binarised, and greyscale at another size) and the reads must
   agree and have as many characters as the run has cells. Characters of
   the document number and optional data are also read one by one: there
   a misread G for 6 or S for 8 weighs the same in the check digit, so only
   reads that do not depend on the neighbours' context are kept.
5. *Verify*: every check digit must hold, and the issuing state and
   nationality must be known ICAO codes; anything else is no read (the
   next camera frame is another chance).

Tesseract comes from the maintained ``tesserocr`` binding (its wheel carries
libtesseract) with the English model of Debian's ``tesseract-ocr-eng``.
Nothing here imports Kivy.
"""
from __future__ import annotations

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
ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

TESSDATA_CANDIDATES = (
    Path("/usr/share/tesseract-ocr/5/tessdata"),
    Path("/usr/share/tesseract-ocr/4.00/tessdata"),
    Path("/usr/share/tessdata"),
)

# How each line is read: runs of characters between fillers, cut further
# where the group changes; each group has the characters it may hold.
# Line 1: the document code, then letters (issuing state and names).
# Line 2: document number and its check; nationality; birth date, check,
# sex, expiry, check (read together: a lone sex letter is often not found);
# optional data, its check and the composite check.
LINE1_GROUPS = "P" + "A" * (CELLS - 1)
LINE2_GROUPS = "X" * 10 + "AAA" + "D" * 15 + "X" * 16
WHITELISTS = {"P": "P", "A": ALPHANUMERIC[:26], "X": ALPHANUMERIC, "D": ALPHANUMERIC[26:] + "MFX"}
# Groups whose characters check digits cannot fully protect (G and 6 weigh
# the same modulo 10): read twice, at two sizes, and the reads must agree.
READ_TWICE = {"X"}
# A cell this close below the filler threshold could be either: no read.
AMBIGUOUS = 0.07


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


def tessdata_dir() -> Path:
    """Where Tesseract's English model is (``TESSDATA_PREFIX`` first)."""
    candidates = [Path(os.environ["TESSDATA_PREFIX"])] if os.environ.get("TESSDATA_PREFIX") else []
    for path in candidates + list(TESSDATA_CANDIDATES):
        if (path / "eng.traineddata").exists():
            return path
    raise FileNotFoundError("no Tesseract English model: install the Debian package tesseract-ocr-eng "
                            "(scripts/system-packages.sh) or set TESSDATA_PREFIX")


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


def _ink(strip: np.ndarray) -> np.ndarray:
    """Dark strokes as 255, paper as 0 (Otsu after evening out the light)."""
    import cv2

    background = cv2.morphologyEx(strip, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15)))
    even = cv2.divide(strip, background, scale=255)
    _, ink = cv2.threshold(even, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
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

    def span(self, first: int, last: int) -> np.ndarray:
        """Characters ``first`` to ``last`` (inclusive) on plain paper: a
        quarter pitch of the gap on each side, no piece of a neighbour."""
        import cv2

        gap = int(self.pitch * 0.25)
        x0 = max(0, self.boxes[first][0] - gap)
        x1 = min(self.strip.shape[1], self.boxes[last][2] + gap)
        y0 = max(0, min(b[1] for b in self.boxes[first:last + 1]) - gap)
        y1 = min(self.strip.shape[0], max(b[3] for b in self.boxes[first:last + 1]) + gap)
        piece = self.strip[y0:y1, x0:x1]
        paper = int(np.percentile(piece, 90))
        margin = max(2, int(self.pitch * 0.6))
        return cv2.copyMakeBorder(piece, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=paper)


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
    """Reads TD3 zones with Tesseract (see the module's description).

    One Tesseract engine per reader, used under a lock: give each thread
    that reads at the same time its own reader.
    """

    def __init__(self, tessdata: str | Path | None = None, filler_similarity: float = 0.75):
        import tesserocr

        self._tesserocr = tesserocr
        self._api = tesserocr.PyTessBaseAPI(path=str(tessdata or tessdata_dir()) + os.sep, lang="eng",
                                            psm=tesserocr.PSM.SINGLE_LINE, oem=tesserocr.OEM.LSTM_ONLY)
        # Only zone characters; no dictionary "corrections" of names and numbers.
        self._api.SetVariable("tessedit_char_whitelist", ALPHANUMERIC)
        self._api.SetVariable("load_system_dawg", "0")
        self._api.SetVariable("load_freq_dawg", "0")
        self._lock = threading.Lock()
        self.filler_similarity = filler_similarity
        self.height = 80  # pixels, a run's image with its margins
        self.second_height = 100

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
        texts = []
        for line_cells, groups in zip(cells, (LINE1_GROUPS, LINE2_GROUPS)):
            text = self._read_line(line_cells, filler, groups)
            if text is None:
                return None
            texts.append(text)
        line1, line2 = texts
        passport = verified(line1, line2)
        if passport is None:
            return None
        return MrzRead((line1, line2), passport, time.perf_counter() - started)

    def _read_line(self, cells: _Cells, filler: np.ndarray, groups: str) -> str | None:
        """The line's text: fillers by shape, every other run of characters
        read by Tesseract one group at a time (see LINE2_GROUPS)."""
        similarity = [float((cells.patch(i) * filler).sum()) for i in range(CELLS)]
        if any(self.filler_similarity - AMBIGUOUS <= s < self.filler_similarity for s in similarity):
            return None  # a cell that might be "<" or "K": not this frame
        is_filler = [s >= self.filler_similarity for s in similarity]
        out = ["<"] * CELLS
        i = 0
        while i < CELLS:
            if is_filler[i]:
                i += 1
                continue
            j = i
            while j + 1 < CELLS and not is_filler[j + 1] and groups[j + 1] == groups[i]:
                j += 1
            image, whitelist, single = cells.span(i, j), WHITELISTS[groups[i]], i == j
            text = self._ocr(image, whitelist, single)
            if len(text) != j - i + 1:
                return None
            if self._ocr(image, whitelist, single, self.second_height, binarize=False) != text:
                return None
            if groups[i] in READ_TWICE and not single:
                # Letters and digits that weigh the same in a check digit
                # (G and 6, S and 8): each character alone, out of the
                # context of its neighbours, must read the same.
                for k in range(i, j + 1):
                    if self._ocr(cells.span(k, k), whitelist, True) != text[k - i]:
                        return None
            out[i:j + 1] = text
            i = j + 1
        return "".join(out)

    def _ocr(self, image: np.ndarray, whitelist: str, single: bool, height: int | None = None,
             binarize: bool = True) -> str:
        import cv2
        from PIL import Image

        # Tesseract reads best with capitals about 30-40 pixels high.
        scale = (height or self.height) / image.shape[0]
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        if binarize:
            _, image = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        if single:
            # Tesseract's line model often finds nothing in one lone letter:
            # it reads the letter three times over, and must agree with itself.
            image = np.hstack([image] * 3)
        with self._lock:
            self._api.SetVariable("tessedit_char_whitelist", whitelist)
            self._api.SetImage(Image.fromarray(image))
            text = "".join(self._api.GetUTF8Text().split())
        if single:
            return text[0] if len(text) == 3 and len(set(text)) == 1 else ""
        return text


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
