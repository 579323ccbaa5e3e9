"""6. Passport zones read from camera frames (the traveller app's reader).

The 24 generated passport data pages of ``tests/data/passports.py``
(OCR-B zone, tilt, blur, glare, noise), each seen in ``frames`` camera
frames (``take`` 0, 1, ...), every frame read by
``shared.mrz_ocr.TesseractMrzReader`` (no early stop: every frame counts
for the wrong-zone figure). Only ``read`` is timed; drawing a frame is not.

Figures: median / p90 / p99 ms per frame; frames whose zone was accepted;
zones accepted that are not the printed one (must be 0); pages read on
their first frame; pages the app would report within the frames (its
``AgreeingReads``: the same zone read on two frames), and after how many.
"""
from __future__ import annotations

import json
import sys
import time

import harness

sys.path.insert(0, str(harness.ROOT))  # this checkout's shared/ and tests/data/
from shared import mrz_ocr  # noqa: E402
from tests.data import passports  # noqa: E402

FRAMES = 10  # as tests/traveller/test_traveller_logic.py: about one second of scanning


def _app_reports(reads: list[str | None]) -> tuple[str | None, int | None]:
    """What AgreeingReads(frames=2) reports from these per-frame reads, and
    on which frame (1-based): the first zone read twice."""
    seen: dict[str, int] = {}
    for n, text in enumerate(reads, 1):
        if text is None:
            continue
        seen[text] = seen.get(text, 0) + 1
        if seen[text] == 2:
            return text, n
    return None, None


def run(frames: int = FRAMES) -> dict:
    reader = mrz_ocr.TesseractMrzReader()
    reader.read(passports.camera_frame(passports.HOLDERS[0], 0, frames)[0])  # warm-up, not counted
    times, accepted_ms = [], []
    reads: dict[str, list[str | None]] = {h.number: [] for h in passports.HOLDERS}
    wrong = []
    for take in range(frames):  # take by take, as a pass over every page
        for index, holder in enumerate(passports.HOLDERS):
            frame, _ = passports.camera_frame(holder, index, take)
            t = time.perf_counter()
            found = reader.read(frame)
            ms = (time.perf_counter() - t) * 1000
            times.append(ms)
            text = found.text if found else None
            reads[holder.number].append(text)
            if found:
                accepted_ms.append(ms)
                if found.lines != passports.zone(holder):
                    wrong.append(f"passport{index:02d} frame {take}")
    reader.close()
    printed = {h.number: "\n".join(passports.zone(h)) for h in passports.HOLDERS}
    reported, after, reported_wrong = 0, [], 0
    for number, texts in reads.items():
        text, n = _app_reports(texts)
        if text is None:
            continue
        if text == printed[number]:
            reported += 1
            after.append(n)
        else:
            reported_wrong += 1
    return {
        "reader": f"shared.mrz_ocr.TesseractMrzReader, model {mrz_ocr.MODEL}.traineddata "
                  f"(legacy engine), lines read at {', '.join(map(str, mrz_ocr.READ_HEIGHTS))} px",
        "pages": len(passports.HOLDERS), "frames_per_page": frames, "frames": len(times),
        "median_ms": harness.percentile(times, 50), "p90_ms": harness.percentile(times, 90),
        "p99_ms": harness.percentile(times, 99),
        "median_ms_accepted": harness.percentile(accepted_ms, 50) if accepted_ms else None,
        "frames_accepted": len(accepted_ms),
        "wrong_accepted": len(wrong), "wrong_frames": wrong,
        "pages_first_frame": sum(1 for n, t in reads.items() if t[0] == printed[n]),
        "pages_reported": reported, "pages_reported_wrong": reported_wrong,
        "frames_to_report_median": harness.percentile(after, 50) if after else None,
        "frames_to_report_max": max(after) if after else None,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
