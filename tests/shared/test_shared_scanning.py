"""From camera frames to text: the 40 camera-like sample frames, frame
sources (image files, video file, arrays, texture buffers), boarding-pass
formats, and the cost per frame against plain zxing-cpp."""
from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp

from shared import bcbp
from shared.scanning import (
    BOARDING_PASS,
    QR,
    ArrayFrames,
    Code,
    Decoder,
    ImageFiles,
    Novelty,
    ScanLoop,
    decode_file,
    grey_from_rgba,
    video_file,
)

REPO = Path(__file__).resolve().parents[2]
FRAMES = REPO / "tests" / "data" / "frames"
MANIFEST = json.loads((FRAMES / "manifest.json").read_text())
WITH_CODE = [e for e in MANIFEST if e["text"]]
EMPTY = [e for e in MANIFEST if not e["text"]]
AMS_PEK = "M1CHEN/MEI            EXYZ789 AMSPEKKL 0897 332Y023C0042 100"


def test_the_sample_set_has_30_frames_with_a_code_and_10_without():
    assert (len(WITH_CODE), len(EMPTY)) == (30, 10)


@pytest.fixture(scope="module")
def greys():
    return {e["file"]: cv2.imread(str(FRAMES / e["file"]), cv2.IMREAD_GRAYSCALE) for e in MANIFEST}


@pytest.mark.parametrize("formats", [QR, BOARDING_PASS], ids=["qr", "boarding-pass-formats"])
def test_every_code_in_the_sample_frames_reads_with_the_manifest_text(greys, formats):
    decoder = Decoder(formats)
    read = {e["file"]: [c.text for c in decoder.decode(greys[e["file"]])] for e in WITH_CODE}
    assert read == {e["file"]: [e["text"]] for e in WITH_CODE}


@pytest.mark.parametrize("formats", [QR, BOARDING_PASS], ids=["qr", "boarding-pass-formats"])
def test_frames_without_a_code_give_no_false_positive(greys, formats):
    decoder = Decoder(formats)
    assert {e["file"]: decoder.decode(greys[e["file"]]) for e in EMPTY} == {e["file"]: [] for e in EMPTY}


def test_colour_frames_decode_the_same_as_greyscale_ones():
    decoder = Decoder(QR)
    for e in MANIFEST[::5]:
        colour = cv2.imread(str(FRAMES / e["file"]))
        assert colour.ndim == 3
        assert [c.text for c in decoder.decode(colour)] == ([e["text"]] if e["text"] else [])


def test_decoding_costs_about_what_plain_zxing_cpp_costs_on_the_same_frames(greys):
    """Interleaved, so load on the machine hits both alike; medians over
    three passes of the 40 frames. The pipeline adds a format filter and a
    list of small objects, nothing per pixel."""
    decoder = Decoder(QR)
    formats = (zxingcpp.BarcodeFormat.QRCode,)
    ours, plain = [], []
    for _ in range(3):
        for frame in greys.values():
            t0 = time.perf_counter()
            zxingcpp.read_barcodes(frame, formats=formats)
            t1 = time.perf_counter()
            decoder.decode(frame)
            t2 = time.perf_counter()
            plain.append(t1 - t0)
            ours.append(t2 - t1)
    ratio = statistics.median(ours) / statistics.median(plain)
    print(f"median per frame: plain {statistics.median(plain) * 1e3:.2f} ms, "
          f"pipeline {statistics.median(ours) * 1e3:.2f} ms, ratio {ratio:.2f}")
    assert ratio < 1.5


def test_a_greyscale_frame_goes_to_zxing_without_a_copy(monkeypatch, greys):
    seen = []
    real = zxingcpp.read_barcodes
    monkeypatch.setattr(zxingcpp, "read_barcodes", lambda image, **kw: seen.append(image) or real(image, **kw))
    frame = greys[WITH_CODE[0]["file"]]
    Decoder(QR).decode(frame)
    assert seen[0] is frame


@pytest.mark.parametrize("fmt", ["PDF417", "Aztec", "QRCode"])
def test_boarding_passes_read_in_all_three_iata_symbologies(fmt):
    symbol = np.array(zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(AMS_PEK, getattr(zxingcpp.BarcodeFormat, fmt)), scale=3))
    frame = np.full((720, 1280), 190, np.uint8)  # a grey counter top
    frame[300:300 + symbol.shape[0], 400:400 + symbol.shape[1]] = symbol
    [code] = Decoder(BOARDING_PASS).decode(frame)
    assert code == Code(AMS_PEK, fmt)
    assert bcbp.parse(code.text).legs[0].destination == "PEK"


def test_a_qr_only_decoder_ignores_a_pdf417_boarding_pass():
    symbol = np.array(zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(AMS_PEK, zxingcpp.BarcodeFormat.PDF417), scale=3))
    assert Decoder(QR).decode(symbol) == []


def test_image_files_are_a_frame_source_read_in_order():
    source = ImageFiles([FRAMES / e["file"] for e in MANIFEST[28:32]])
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert source.exhausted
    assert len(frames) == 4 and all(f.shape == (720, 1280) for f in frames)


def test_decode_file_reads_one_image():
    assert [c.text for c in decode_file(FRAMES / "frame07.jpg")] == [MANIFEST[7]["text"]]


def test_a_video_file_is_a_frame_source(tmp_path):
    # Lossless FFV1 so the test is about the source, not about compression.
    path = tmp_path / "walk-up.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (1280, 720))
    assert writer.isOpened()
    chosen = [MANIFEST[31], MANIFEST[5], MANIFEST[17], MANIFEST[32]]
    for e in chosen:
        writer.write(cv2.imread(str(FRAMES / e["file"])))
    writer.release()
    source = video_file(path)
    decoder = Decoder(QR)
    results = []
    while (frame := source.read()) is not None:
        assert frame.shape == (720, 1280, 3)
        results.append([c.text for c in decoder.decode(frame)])
    source.close()
    assert results == [[e["text"]] if e["text"] else [] for e in chosen]


def test_a_missing_video_file_is_an_error():
    with pytest.raises(OSError):
        video_file("/nonexistent/video.avi")


def test_a_bottom_up_rgba_texture_buffer_is_flipped_before_decoding():
    frame = cv2.imread(str(FRAMES / "frame05.jpg"))
    rgba_upside_down = cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA)[::-1].tobytes()
    g = grey_from_rgba(rgba_upside_down, 1280, 720, flip_vertical=True)
    assert [c.text for c in Decoder(QR).decode(g)] == [MANIFEST[5]["text"]]


def test_a_code_held_in_front_of_the_camera_is_reported_once():
    now = [0.0]
    novelty = Novelty(forget_after=2.0, clock=lambda: now[0])
    form = Code("form-a", "QRCode")
    reported = []
    for t in [0.0, 0.1, 0.2, 1.5, 3.0]:  # seen continuously (gaps under 2 s)
        now[0] = t
        reported += novelty.new([form])
    assert reported == [form]
    now[0] = 6.0  # taken away for 3 s, shown again
    assert novelty.new([form]) == [form]
    novelty.clear()
    assert novelty.new([form]) == [form]


def test_the_scan_loop_decodes_on_a_worker_thread_and_reports_each_code_once():
    frames = [cv2.imread(str(FRAMES / e["file"]), cv2.IMREAD_GRAYSCALE) for e in MANIFEST]
    reports, threads, previews = [], set(), []
    ended = threading.Event()

    def on_codes(codes):
        threads.add(threading.current_thread().name)
        reports.extend(codes)

    loop = ScanLoop(ArrayFrames(frames), [Decoder(QR)], on_codes=on_codes,
                    on_frame=previews.append, on_end=ended.set, max_fps=None).start()
    assert ended.wait(30)
    loop.stop()
    assert loop.error is None
    assert len(previews) == loop.frames == 40
    # All 30 coded frames hold the same form: seen back to back, reported once.
    assert reports == [Code(WITH_CODE[0]["text"], "QRCode")]
    assert threads == {"scan-loop"}


def test_the_scan_loop_takes_turns_between_decoders():
    symbol = np.array(zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(AMS_PEK, zxingcpp.BarcodeFormat.PDF417), scale=3))
    reports = []
    ended = threading.Event()
    # The pass is shown for 3 frames: QR, QR, then the boarding-pass decoder.
    loop = ScanLoop(ArrayFrames([symbol] * 3), [Decoder(QR), Decoder(QR), Decoder(BOARDING_PASS)],
                    on_codes=reports.extend, on_end=ended.set, max_fps=None).start()
    assert ended.wait(10)
    assert [c.format for c in reports] == ["PDF417"]


def test_stopping_the_scan_loop_releases_a_looping_source():
    source = ArrayFrames([np.zeros((72, 128), np.uint8)], loop=True)
    loop = ScanLoop(source, [Decoder(QR)], on_codes=lambda codes: None, max_fps=200).start()
    time.sleep(0.05)
    loop.stop()
    assert not loop.running
    assert source.exhausted
    assert loop.frames > 1
