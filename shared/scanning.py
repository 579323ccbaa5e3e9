"""From camera frames to scanned text: frame sources and the decoder.

A *frame source* yields images (numpy arrays, greyscale ``HxW`` or BGR
``HxWx3``): a camera, a video file, a list of image files, or arrays handed
in by the caller (a GUI toolkit's camera texture, tests). The *decoder*
turns one frame into the codes it holds with zxing-cpp, restricted to the
bar code formats the kiosk reads (QR for forms and pairing codes; PDF417
and Aztec too for boarding passes). A *scan loop* runs source and decoder
on a worker thread and reports each newly seen code once, so a user
interface never waits on a camera or a decoder.

The per-frame cost is kept at that of plain ``zxingcpp.read_barcodes`` on a
greyscale array: a greyscale frame goes to zxing-cpp as is (no copy), a
colour frame is converted once with OpenCV (faster than letting zxing-cpp
convert BGR itself).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
import zxingcpp

QR = ("QRCode",)
BOARDING_PASS = ("PDF417", "Aztec", "QRCode")


@dataclass(frozen=True)
class Code:
    """One decoded bar code."""

    text: str
    format: str  # "QRCode", "PDF417", "Aztec"


# --- frame sources -------------------------------------------------------

class FrameSource(Protocol):
    """Anything that hands out frames until it has no more.

    ``read()`` returns the next frame, or None when the source is exhausted
    (end of a file or list) or the camera gave nothing this time.
    ``exhausted`` tells the two apart. ``close()`` releases the device.
    """

    exhausted: bool

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class ArrayFrames:
    """Frames the caller already holds: arrays, in order, optionally looped."""

    def __init__(self, frames: Iterable[np.ndarray], loop: bool = False):
        self._frames = list(frames)
        self._loop = loop
        self._next = 0
        self.exhausted = not self._frames

    def read(self) -> np.ndarray | None:
        if self.exhausted:
            return None
        frame = self._frames[self._next]
        self._next += 1
        if self._next == len(self._frames):
            if self._loop:
                self._next = 0
            else:
                self.exhausted = True
        return frame

    def close(self) -> None:
        self.exhausted = True


class ImageFiles:
    """A list of image files (JPEG, PNG ...), read one per frame.

    ``grey=True`` (the default) reads straight to greyscale, which is what the
    decoder wants: no colour conversion at all.
    """

    def __init__(self, paths: Sequence[str | Path], grey: bool = True, loop: bool = False):
        import cv2  # OpenCV only where images must be read

        self._cv2 = cv2
        self._paths = [Path(p) for p in paths]
        self._flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
        self._loop = loop
        self._next = 0
        self.exhausted = not self._paths

    def read(self) -> np.ndarray | None:
        if self.exhausted:
            return None
        path = self._paths[self._next]
        self._next += 1
        if self._next == len(self._paths):
            if self._loop:
                self._next = 0
            else:
                self.exhausted = True
        frame = self._cv2.imread(str(path), self._flag)
        if frame is None:
            raise OSError(f"cannot read image {path}")
        return frame

    def close(self) -> None:
        self.exhausted = True


class _Capture:
    """An OpenCV VideoCapture (camera or video file) as a frame source."""

    def __init__(self, capture, name: str, is_file: bool):
        if not capture.isOpened():
            capture.release()
            raise OSError(f"cannot open {name}")
        self._capture = capture
        self._is_file = is_file
        self.name = name
        self.exhausted = False
        self._lock = threading.Lock()

    def read(self) -> np.ndarray | None:
        with self._lock:
            if self.exhausted:
                return None
            ok, frame = self._capture.read()
        if not ok:
            if self._is_file:
                self.exhausted = True
            return None
        return frame

    def close(self) -> None:
        with self._lock:
            self.exhausted = True
            self._capture.release()


def video_file(path: str | Path) -> FrameSource:
    """Frames of a video file, in order, then exhausted."""
    import cv2

    return _Capture(cv2.VideoCapture(str(path)), f"video file {path}", is_file=True)


def camera(index: int = 0, width: int = 1280, height: int = 720) -> FrameSource:
    """Frames of a camera (V4L2 device ``index``) at about ``width`` x ``height``.

    The capture buffer is kept at one frame where the backend allows it, so a
    slow decoder reads the newest frame, not a queue of stale ones.
    """
    import cv2

    capture = cv2.VideoCapture(index)
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return _Capture(capture, f"camera {index}", is_file=False)


# --- decoding --------------------------------------------------------------

def grey(frame: np.ndarray, order: str = "BGR") -> np.ndarray:
    """The greyscale version of ``frame``: the frame itself if it is already
    greyscale, else one OpenCV conversion (``order``: BGR, RGB, RGBA, BGRA)."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    import cv2

    code = {
        "BGR": cv2.COLOR_BGR2GRAY, "RGB": cv2.COLOR_RGB2GRAY,
        "RGBA": cv2.COLOR_RGBA2GRAY, "BGRA": cv2.COLOR_BGRA2GRAY,
    }[order]
    return cv2.cvtColor(frame, code)


def grey_from_rgba(pixels: bytes, width: int, height: int, flip_vertical: bool = False) -> np.ndarray:
    """A greyscale frame from raw RGBA pixels (a GUI texture's buffer).

    ``flip_vertical`` for bottom-up buffers (OpenGL textures): a mirrored QR
    code is not read by every decoder.
    """
    rgba = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 4)
    if flip_vertical:
        rgba = rgba[::-1]
    return grey(np.ascontiguousarray(rgba), "RGBA")


class Decoder:
    """Finds the bar codes of the given formats in a frame.

    ``formats`` are zxing-cpp format names (see QR, BOARDING_PASS). The
    other options are zxing-cpp's; the defaults read every one of the 30
    camera-like sample frames (rotated, blurred, dim, 3.5 px per module).
    """

    def __init__(self, formats: Sequence[str] = QR, *, try_invert: bool = True,
                 try_downscale: bool = True, order: str = "BGR"):
        self.formats = tuple(formats)
        self._formats = tuple(getattr(zxingcpp.BarcodeFormat, f) for f in self.formats)
        self._try_invert = try_invert
        self._try_downscale = try_downscale
        self._order = order

    def decode(self, frame: np.ndarray) -> list[Code]:
        """Every code found in ``frame`` (usually zero or one)."""
        found = zxingcpp.read_barcodes(
            grey(frame, self._order),
            formats=self._formats,
            try_invert=self._try_invert,
            try_downscale=self._try_downscale,
        )
        return [Code(b.text, b.format.name) for b in found if b.valid and b.text]


def decode_file(path: str | Path, formats: Sequence[str] = QR) -> list[Code]:
    """Codes in one image file (for tools and tests)."""
    frame = ImageFiles([path]).read()
    return Decoder(formats).decode(frame)


class Novelty:
    """Reports a code when it appears, not on every frame that shows it.

    A code held in front of the camera is in many consecutive frames; it is
    reported again only after it has been out of sight for ``forget_after``
    seconds (the traveller took the form away and shows it again).
    """

    def __init__(self, forget_after: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self._forget_after = forget_after
        self._clock = clock
        self._last_seen: dict[str, float] = {}

    def new(self, codes: Iterable[Code]) -> list[Code]:
        now = self._clock()
        fresh = []
        for code in codes:
            seen = self._last_seen.get(code.text)
            if seen is None or now - seen > self._forget_after:
                fresh.append(code)
            self._last_seen[code.text] = now
        # Forget what has been out of sight long enough (bounded memory, and
        # nothing of an earlier traveller lingers).
        self._last_seen = {t: s for t, s in self._last_seen.items() if now - s <= self._forget_after}
        return fresh

    def clear(self) -> None:
        self._last_seen.clear()


class ScanLoop:
    """Reads frames from a source and decodes them on a worker thread.

    ``decoders`` are used in turn, one per frame: e.g. ``[qr, qr, passes]``
    looks for form QR codes in two frames of three and for boarding passes
    in the third, which keeps the average cost near that of QR alone.
    ``on_frame(frame)`` is called with every frame (for a preview) and
    ``on_codes(codes)`` with codes not seen just before; both run on the
    worker thread, so a GUI must hand them over to its own thread.
    ``on_end()`` is called once when the source is exhausted.
    ``max_fps`` limits the frame rate (a camera delivers frames at its own
    rate anyway; files would otherwise spin as fast as they can be read).
    """

    def __init__(self, source: FrameSource, decoders: Sequence[Decoder],
                 on_codes: Callable[[list[Code]], None],
                 on_frame: Callable[[np.ndarray], None] | None = None,
                 on_end: Callable[[], None] | None = None,
                 max_fps: float | None = 30.0,
                 novelty: Novelty | None = None):
        if not decoders:
            raise ValueError("a scan loop needs at least one decoder")
        self.source = source
        self._decoders = list(decoders)
        self._on_codes = on_codes
        self._on_frame = on_frame
        self._on_end = on_end
        self._period = 1.0 / max_fps if max_fps else 0.0
        self.novelty = novelty or Novelty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.error: BaseException | None = None

    def start(self) -> "ScanLoop":
        self._thread = threading.Thread(target=self._run, name="scan-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading, wait for the worker, release the source."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.source.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            for codes in self._frames():
                if codes:
                    self._on_codes(codes)
        except BaseException as exc:  # reported, not swallowed: the kiosk shows "camera problem"
            self.error = exc
        finally:
            if self._on_end is not None and not self._stop.is_set():
                self._on_end()

    def _frames(self) -> Iterator[list[Code]]:
        turn = 0
        while not self._stop.is_set():
            started = time.monotonic()
            frame = self.source.read()
            if frame is None:
                if self.source.exhausted:
                    return
                self._stop.wait(0.01)  # the camera had no frame ready
                continue
            self.frames += 1
            if self._on_frame is not None:
                self._on_frame(frame)
            decoder = self._decoders[turn % len(self._decoders)]
            turn += 1
            yield self.novelty.new(decoder.decode(frame))
            rest = self._period - (time.monotonic() - started)
            if rest > 0:
                self._stop.wait(rest)
