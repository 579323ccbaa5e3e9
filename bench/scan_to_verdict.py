"""4. Scan to verdict on the kiosk path, over loopback: two figures side by side.

For each traveller: a form freshly issued through POST /api/v1/forms, its QR
image as the API serves it (GET /forms/{id}/qr.png) held up in a camera-like
1280x720 colour frame (not timed). Then, one traveller at a time:

- **no screen** (``_direct``, this process): the kiosk's decoder on that
  frame, the signature check with the keys of /.well-known/jwks.json (cached,
  as kiosks do), POST /api/v1/scans through the kiosk's API client, reading
  the verdict.
- **kiosk app** (``kiosk_child``, a subprocess: the Kivy window is
  process-global): the real ``kiosk_app.app.KioskApp`` in an SDL offscreen
  window, its real scan loop, desk worker and screens. A frame source plays
  the camera: a frame without a code at the scan loop's 30 frames/s, then
  the form's frame from the moment it is "held up" until its verdict is on
  screen. Timed from the moment the source hands the form's first frame to
  the scan loop until the window has been flipped with the result screen
  showing a card for that form id (laid out, its texts rendered). The
  measuring loop is the app's own main loop, ``EventLoop.idle()`` (which
  ticks the Kivy clock at its 60 frames/s, dispatches input, draws and
  flips). Stages: decode (scan-loop thread, until the codes reach the app),
  hand-over to the desk worker, request (``ExitDesk.handle``: POST /scans),
  back to the UI thread (``Clock.schedule_once``), screen (result cards,
  layout, text, draw, flip). Online, the kiosk does not check the signature
  itself (the API does); only offline does it check with its cached keys.

Each traveller on the kiosk: the scan screen (camera preview running) shown
and drawn first; after the verdict, the session is finished (``finish()``).
Both paths get a short warm-up (fresh forms, not counted): the first card
ever drawn loads fonts, the first request opens the connection. Runs
alternate which path goes first; the screen's share is the per-run ratio
and difference of the two paths' medians and p99s.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import requests

import harness

WARMUP = 3
FRAME_SIZE = (1280, 720)
WINDOW_SIZE = (1280, 800)  # as tests/kiosk uses
MARK = "BENCH-KIOSK "  # the child's answers on stdout


# --- forms and frames (shared by both paths, never timed) ---------------------------

def _background() -> np.ndarray:
    """A camera-like colour background without a code (one of the sample
    frames without a QR code, as tests/kiosk does), as BGR 1280x720."""
    import cv2

    frame = cv2.imread(str(harness.ROOT / "tests" / "data" / "frames" / "frame31.jpg"), cv2.IMREAD_COLOR)
    if frame is None:  # no sample frames: a plain grey background
        return np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), (118, 124, 128), np.uint8)
    return np.ascontiguousarray(cv2.resize(frame, FRAME_SIZE, interpolation=cv2.INTER_AREA))


def camera_frame(png: bytes, background: np.ndarray) -> np.ndarray:
    """The API's qr.png held up in front of the camera: scaled to at most
    420 px (about 4-5 px per module, as tests/kiosk does) on the background,
    as the BGR frame an OpenCV camera delivers."""
    import cv2

    code = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    scale = min(1.0, 420 / code.shape[0])
    code = cv2.resize(code, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = background.copy()
    y, x = 150, 430
    frame[y:y + code.shape[0], x:x + code.shape[1]] = code[:, :, None]
    return frame


def _issue(session: requests.Session, base: str, n: int, tag: str) -> list[dict]:
    """n fresh forms: {"id", "payload", "png"}."""
    purchase = (date.today() - timedelta(days=1)).isoformat()
    forms = []
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
        form = response.json()
        png = session.get(f"{base}/api/v1/forms/{form['id']}/qr.png", timeout=10)
        png.raise_for_status()
        forms.append({"id": form["id"], "payload": form["qr_payload"], "png": png.content})
    return forms


def _stats(times: list[float]) -> dict:
    return {"median": harness.percentile(times, 50), "p99": harness.percentile(times, 99),
            "min": min(times), "max": max(times), "n": len(times)}


# --- path 1: decode + verify + POST, no screen (this process) --------------------------

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


class _Direct:
    def __init__(self, base: str, device_token: str):
        import qr_decode
        from shared import qrtoken

        self.qrtoken = qrtoken
        self.keys = qrtoken.KeySet(requests.get(base + "/.well-known/jwks.json", timeout=10).json())
        self.decode, self.decoder_kind = qr_decode._pipeline()
        self.post, self.client_kind = _client(base, device_token)
        self.verdicts: dict = {}

    def measure(self, frames: list[np.ndarray]) -> dict:
        times, parts = [], {"decode": [], "verify": [], "request": []}
        for frame in frames:
            t0 = time.perf_counter()
            texts = self.decode(frame)
            t1 = time.perf_counter()
            claims = self.qrtoken.verify_form_token(texts[0], self.keys)
            t2 = time.perf_counter()
            verdict = self.post(texts[0])
            t3 = time.perf_counter()
            assert claims.form_id
            self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
            times.append((t3 - t0) * 1000)
            parts["decode"].append((t1 - t0) * 1000)
            parts["verify"].append((t2 - t1) * 1000)
            parts["request"].append((t3 - t2) * 1000)
        return {"times": times, "parts": parts}


# --- path 2: the kiosk app, to the rendered verdict (subprocess) -------------------------

class _Child:
    """The kiosk-app subprocess: one JSON line per command, one per answer."""

    def __init__(self, base: str, device_token: str):
        harness.WORK.mkdir(parents=True, exist_ok=True)
        self.log = open(harness.WORK / "scan-to-verdict-kiosk.log", "w")
        env = {**os.environ, "BENCH_KIOSK_API_URL": base, "BENCH_KIOSK_DEVICE_TOKEN": device_token}
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--kiosk-child"], cwd=harness.ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self._answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith(MARK):
                self._answers.put(json.loads(line[len(MARK):]))
        self._answers.put(None)

    def answer(self, timeout: float) -> dict:
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"the kiosk subprocess did not answer within {timeout:.0f} s "
                               "(bench/results/work/scan-to-verdict-kiosk.log)") from None
        if answer is None:
            raise RuntimeError(f"the kiosk subprocess ended (exit {self.process.wait(10)}; "
                               "bench/results/work/scan-to-verdict-kiosk.log)")
        if "error" in answer:
            raise RuntimeError(f"kiosk subprocess: {answer['error']}")
        return answer

    def measure(self, forms: list[dict]) -> dict:
        self.process.stdin.write(json.dumps({"cmd": "run", "forms": [
            {"id": f["id"], "png": base64.b64encode(f["png"]).decode()} for f in forms]}) + "\n")
        self.process.stdin.flush()
        return self.answer(timeout=60 + 15 * len(forms))

    def close(self):
        try:
            if self.process.poll() is None:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(5)
        finally:
            self.log.close()


def run(base: str, world, runs: int = 3, per_run: int = 100) -> dict:
    shop = requests.Session()
    shop.headers["Authorization"] = f"Bearer {world.shop_token}"
    background = _background()
    stamp = int(time.time()) % 100000
    direct = _Direct(base, world.device_token)
    out = {"runs": runs, "per_run": per_run, "warmup": WARMUP,
           "frames": "each form's GET /forms/{id}/qr.png, scaled to 420 px, in a 1280x720 BGR camera-like frame",
           "decoder": direct.decoder_kind, "client": direct.client_kind}
    child = None
    try:
        child = _Child(base, world.device_token)
        out["kiosk_setup"] = child.answer(timeout=120)
    except Exception as exc:  # the no-screen figure still counts
        harness.log(f"scan to verdict: kiosk app not available: {exc!r}")
        out["kiosk_error"] = f"{type(exc).__name__}: {exc}"[:500]
        if child is not None:
            child.close()
        child = None

    def frames(forms):
        return [camera_frame(f["png"], background) for f in forms]

    try:
        direct.measure(frames(_issue(shop, base, WARMUP, f"SVW{stamp}")))
        direct.verdicts.clear()
        if child is not None:
            child.measure(_issue(shop, base, WARMUP, f"SKW{stamp}"))
        per_run_direct, per_run_kiosk = [], []
        for r in range(runs):
            direct_frames = frames(_issue(shop, base, per_run, f"SV{r}{stamp}"))
            kiosk_forms = _issue(shop, base, per_run, f"SK{r}{stamp}") if child is not None else []
            order = ["direct", "kiosk"] if r % 2 == 0 else ["kiosk", "direct"]
            for path in order:
                if path == "direct":
                    per_run_direct.append(direct.measure(direct_frames))
                elif child is not None:
                    try:
                        per_run_kiosk.append(child.measure(kiosk_forms))
                    except Exception as exc:
                        harness.log(f"scan to verdict: kiosk app failed: {exc!r}")
                        out["kiosk_error"] = f"{type(exc).__name__}: {exc}"[:500]
                        child.close()
                        child = None
            message = f"scan to verdict run {r + 1}/{runs}: no screen median " \
                f"{harness.percentile(per_run_direct[-1]['times'], 50):.1f} ms"
            if len(per_run_kiosk) == r + 1:
                message += f", kiosk app median {harness.percentile(per_run_kiosk[-1]['times'], 50):.1f} ms"
            harness.log(message)
    finally:
        if child is not None:
            child.close()

    out["no_screen"] = _summary(per_run_direct, "parts")
    out["no_screen"]["verdicts"] = direct.verdicts
    if per_run_kiosk:
        kiosk = _summary(per_run_kiosk, "stages")
        kiosk["verdicts"] = {}
        for run_ in per_run_kiosk:
            for kind, n in run_["verdicts"].items():
                kiosk["verdicts"][kind] = kiosk["verdicts"].get(kind, 0) + n
        kiosk["timeouts"] = sum(r["timeouts"] for r in per_run_kiosk)
        kiosk["scan_screen_not_drawn"] = sum(r["scan_screen_not_drawn"] for r in per_run_kiosk)
        out["kiosk"] = kiosk
        if len(per_run_kiosk) == len(per_run_direct):
            d = [_stats(r["times"]) for r in per_run_direct]
            k = [_stats(r["times"]) for r in per_run_kiosk]
            out["screen_share"] = {
                "ratio_median": harness.ratios([x["median"] for x in k], [x["median"] for x in d]),
                "ratio_p99": harness.ratios([x["p99"] for x in k], [x["p99"] for x in d]),
                "extra_median_ms": harness.spread(a["median"] - b["median"] for a, b in zip(k, d)),
                "extra_p99_ms": harness.spread(a["p99"] - b["p99"] for a, b in zip(k, d)),
            }
    return out


def _summary(per_run: list[dict], parts_key: str) -> dict:
    """Per run median and p99 (their spread over runs), and over every scan
    of every run: median, p99, min, max; each part's median and p99."""
    stats = [_stats(r["times"]) for r in per_run]
    pooled = [t for r in per_run for t in r["times"]]
    parts: dict[str, list] = {}
    for r in per_run:
        for name, values in r[parts_key].items():
            parts.setdefault(name, []).extend(values)
    return {
        "median_ms": harness.spread(s["median"] for s in stats),
        "p99_ms": harness.spread(s["p99"] for s in stats),
        "all_scans_ms": _stats(pooled) if pooled else None,
        "parts_median_ms": {k: harness.percentile(v, 50) for k, v in parts.items()},
        "parts_p99_ms": {k: harness.percentile(v, 99) for k, v in parts.items()},
    }


# --- the subprocess -------------------------------------------------------------------

class HeldFrames:
    """The kiosk camera for the benchmark: a frame without a code until a
    form is held up, then that form's frame (a new array each read, as a
    camera gives) until it is taken away. ``handed_at`` is when the scan loop
    got the form's first frame."""

    exhausted = False

    def __init__(self, idle: np.ndarray):
        self._idle = idle
        self._held = None
        self._lock = threading.Lock()
        self.handed_at = None
        self.reads_since = 0  # frames read since the form was taken away

    def hold(self, frame: np.ndarray) -> None:
        with self._lock:
            self._held, self.handed_at = frame, None

    def take_away(self) -> None:
        with self._lock:
            self._held, self.reads_since = None, 0

    def read(self):
        with self._lock:
            held = self._held
            frame = (held if held is not None else self._idle).copy()
            if held is not None and self.handed_at is None:
                self.handed_at = time.perf_counter()
            self.reads_since += 1
            return frame

    def close(self) -> None:
        pass


def kiosk_child() -> None:
    """The kiosk app in an SDL offscreen window; commands on stdin."""
    import shutil
    import tempfile

    kivy_home = tempfile.mkdtemp(prefix="bench-kivy-home-")
    data_dir = tempfile.mkdtemp(prefix="bench-kiosk-data-")
    os.environ.update({
        "SDL_VIDEODRIVER": "offscreen", "SDL_AUDIODRIVER": "dummy", "KIVY_NO_ARGS": "1",
        "KIVY_HOME": kivy_home, "KIVY_NO_FILELOG": "1", "KIVY_USE_DEFAULTCONFIG": "1",
        "KIVY_NO_CONSOLELOG": "1",
    })
    sys.path.insert(0, str(harness.ROOT))

    def say(message: dict) -> None:
        sys.stdout.write(MARK + json.dumps(message) + "\n")
        sys.stdout.flush()

    try:
        _kiosk_child(say, Path(data_dir))
    except Exception as exc:
        import traceback

        sys.__stderr__.write(traceback.format_exc())  # Kivy takes over sys.stderr; this is the log file
        sys.__stderr__.flush()
        say({"error": f"{type(exc).__name__}: {exc}"[:500]})
    finally:
        shutil.rmtree(kivy_home, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def _kiosk_child(say, data_dir: Path) -> None:
    from kivy.config import Config

    # The window's size before it is created: the offscreen surface keeps
    # its first size (a later Window.size lays out for a size not drawn).
    Config.set("graphics", "width", str(WINDOW_SIZE[0]))
    Config.set("graphics", "height", str(WINDOW_SIZE[1]))
    from kivy.base import EventLoop
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.graphics.opengl import GL_RENDERER, glGetString

    from kiosk_app.app import KioskApp
    from kiosk_app.config import KioskConfig

    EventLoop.ensure_window()
    Window.size = WINDOW_SIZE
    pump = EventLoop.idle  # the app's main loop, one frame: Clock.tick(), input, draw, flip

    app = KioskApp(KioskConfig(
        api_url=os.environ["BENCH_KIOSK_API_URL"], device_token=os.environ["BENCH_KIOSK_DEVICE_TOKEN"],
        exit_point="AMS", desk_location="Departures 2", camera="none", sound=False, data_dir=data_dir))
    app._run_prepare()
    manager, result = app.manager, app.screens["result"]

    def wait(condition, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            pump()
        return True

    if not wait(lambda: (data_dir / "jwks.json").exists() and app.online, timeout=30):
        raise RuntimeError("the kiosk did not reach the API (no keys fetched)")

    # Stamps of the stages (instrumentation only: each wrapper takes a
    # timestamp and calls the app's own method).
    stamps: dict = {}

    def stamped(name, fn, once=True):
        def wrapper(*args, **kwargs):
            if not (once and name in stamps):
                stamps[name] = time.perf_counter()
            result_ = fn(*args, **kwargs)
            if name == "handle":
                stamps["handled"] = time.perf_counter()
            return result_
        return wrapper

    app._on_codes = stamped("codes", app._on_codes)  # before use_frames: the scan loop calls this
    app.desk.handle = stamped("handle", app.desk.handle)
    app._show = stamped("show", app._show)

    # Rendered: the window flipped while the result screen (no transition
    # under way) showed a card for the form, its title and body rendered.
    target = {"form_id": None, "flipped": False, "kind": None}

    def showing() -> str | None:
        form_id = target["form_id"]
        if form_id is None or manager.current_screen is not result or manager.transition.is_active:
            return None
        for card in result.shown:
            if form_id in card.body and card.ids.title.texture is not None and card.ids.body.texture is not None:
                x, y = card.to_window(*card.pos)
                if 0 <= y and y + card.height <= Window.height and card.height > 0:  # in view
                    return card.kind
        return None

    def on_flip(_window):
        if target["form_id"] is not None and not target["flipped"]:
            kind = showing()
            if kind is not None:
                target["flipped"], target["kind"] = True, kind

    Window.bind(on_flip=on_flip)  # runs just before the window's own flip
    scan_flips = {"n": 0}
    Window.bind(on_flip=lambda _w: scan_flips.__setitem__(
        "n", scan_flips["n"] + (manager.current_screen is app.screens["scan"])))
    background = _background()
    say({"ready": True, "renderer": glGetString(GL_RENDERER).decode(errors="replace"),
         "window": list(Window.size), "clock_max_fps": getattr(Clock, "_max_fps", None),
         "scan_loop_max_fps": 30, "kivy_clock": os.environ.get("KIVY_CLOCK", "default")})

    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        source = HeldFrames(background)
        app.use_frames(source)
        times, verdicts, timeouts, unready = [], {}, 0, 0
        stages = {"decode": [], "hand_over": [], "request": [], "to_ui_thread": [], "screen": []}
        for form in command["forms"]:
            frame = camera_frame(base64.b64decode(form["png"]), background)
            # The traveller arrives: scan screen on, camera preview drawn.
            app.go("scan")
            scan_flips["n"] = 0
            if not wait(lambda: scan_flips["n"] >= 3, timeout=2):
                unready += 1
            stamps.clear()
            target.update(form_id=form["id"], flipped=False, kind=None)
            source.hold(frame)  # held up to the camera
            deadline = time.monotonic() + 10
            while not target["flipped"] and time.monotonic() < deadline:
                pump()
            done = time.perf_counter()
            source.take_away()
            if not target["flipped"]:
                timeouts += 1
            else:
                t0 = source.handed_at
                times.append((done - t0) * 1000)
                verdicts[target["kind"]] = verdicts.get(target["kind"], 0) + 1
                s = stamps
                stages["decode"].append((s["codes"] - t0) * 1000)
                stages["hand_over"].append((s["handle"] - s["codes"]) * 1000)
                stages["request"].append((s["handled"] - s["handle"]) * 1000)
                stages["to_ui_thread"].append((s["show"] - s["handled"]) * 1000)
                stages["screen"].append((done - s["show"]) * 1000)
            target["form_id"] = None
            # The traveller leaves: once the scan loop has gone past the
            # form's last frame (finish() forgets the codes seen, so a
            # frame still being decoded would be scanned again).
            wait(lambda: source.reads_since >= 2, timeout=2)
            app.finish()
            pump()
        app.scan_loop.stop()
        if app.scan_loop.error is not None:
            raise RuntimeError(f"scan loop failed: {app.scan_loop.error!r}")
        say({"times": times, "stages": stages, "verdicts": verdicts, "timeouts": timeouts,
             "scan_screen_not_drawn": unready})
    app.dispatch("on_stop")


if __name__ == "__main__":
    if sys.argv[1:] == ["--kiosk-child"]:
        kiosk_child()
    else:
        raise SystemExit("usage: scan_to_verdict.py --kiosk-child (started by run.py)")
