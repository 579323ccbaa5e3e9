"""Sound cues: a rising chime for "validated", two beeps for "go to the desk"
or "wrong airport", a low tone for "refused".

Generated as small WAV files in the kiosk's data folder on first use (no
binary assets in the repository), then played with Kivy's SoundLoader.
"""
from __future__ import annotations

import logging
import math
import struct
import wave
from pathlib import Path

from . import desk

log = logging.getLogger(__name__)
RATE = 22050

# (frequency Hz, seconds) pairs; 0 Hz is a pause.
TUNES = {
    "good": [(880, 0.12), (1320, 0.22)],
    "attention": [(660, 0.15), (0, 0.08), (660, 0.15)],
    "refused": [(220, 0.35)],
}
CUE_OF_KIND = {
    desk.VALIDATED: "good", desk.LAST_EXIT_OK: "good", desk.RECORDED: "good",
    desk.CHECK_REQUIRED: "attention", desk.NOT_LAST_EXIT: "attention", desk.UNVERIFIED: "attention",
    desk.REFUSED: "refused", desk.UNREADABLE: "refused", desk.OUT_OF_SERVICE: "refused",
}


def write_tune(path: Path, notes) -> None:
    frames = bytearray()
    for freq, seconds in notes:
        n = int(RATE * seconds)
        for i in range(n):
            # A short fade in and out so the tones do not click.
            envelope = min(1.0, i / 200, (n - i) / 200)
            value = 0.4 * envelope * math.sin(2 * math.pi * freq * i / RATE) if freq else 0.0
            frames += struct.pack("<h", int(value * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))


class Cues:
    def __init__(self, folder: Path):
        from kivy.core.audio import SoundLoader

        folder.mkdir(parents=True, exist_ok=True)
        self._sounds = {}
        for name, notes in TUNES.items():
            path = folder / f"{name}.wav"
            if not path.exists():
                write_tune(path, notes)
            self._sounds[name] = SoundLoader.load(str(path))  # None without an audio device

    def play(self, kind: str) -> None:
        sound = self._sounds.get(CUE_OF_KIND.get(kind, ""))
        if sound is not None:
            sound.stop()
            sound.play()
