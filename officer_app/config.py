"""Handheld settings: defaults, overridden by the environment, then by flags.

```
TAXFREE_OFFICER_API_URL=https://taxfree.example   --api-url
TAXFREE_OFFICER_DATA_DIR=/var/lib/taxfree-officer --data-dir   (decision queue, cached keys)
TAXFREE_OFFICER_CAMERA=0                          --camera     (index, "none", an image, a folder of images, a video)
TAXFREE_OFFICER_EXIT_POINT=AMS                    --exit-point (preselected desk)
TAXFREE_OFFICER_IDLE_LOCK=120                     --idle-lock  (seconds without a touch before locking)
TAXFREE_OFFICER_REFRESH=10                        --refresh    (seconds between queue refreshes and sends)
TAXFREE_OFFICER_LANGUAGE=nl                       --language   (en or nl: until the officer picks one with
                                                                the NL | EN switch, kept in the data folder)
TAXFREE_OFFICER_DEVICE_TOKEN=tfd_...              --device-token (this handheld's own token, from
                                                                pair-device --kind handheld: its heartbeat)
TAXFREE_OFFICER_HEARTBEAT=30                      --heartbeat  (seconds between health reports)
```
Officers log in with their own accounts; the device token only lets the
handheld report its health to the fleet page. Without one it sends none.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

ENV_PREFIX = "TAXFREE_OFFICER_"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@dataclass(frozen=True)
class OfficerConfig:
    api_url: str = "http://127.0.0.1:5000"
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "share" / "taxfree-officer")
    camera: str = "0"
    exit_point: str | None = None
    idle_lock: float = 120.0
    refresh: float = 10.0
    language: str = "en"
    device_token: str | None = None
    heartbeat: float = 30.0

    @classmethod
    def load(cls, argv: list[str] | None = None, environ: dict | None = None) -> "OfficerConfig":
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = raw
        parser = argparse.ArgumentParser(prog="taxfree-officer",
                                         description="The customs officer's handheld app.")
        parser.add_argument("--api-url")
        parser.add_argument("--data-dir")
        parser.add_argument("--camera")
        parser.add_argument("--exit-point")
        parser.add_argument("--idle-lock", type=float)
        parser.add_argument("--refresh", type=float)
        parser.add_argument("--language", choices=["en", "nl"])
        parser.add_argument("--device-token")
        parser.add_argument("--heartbeat", type=float)
        args = parser.parse_args(argv)
        values.update({k: v for k, v in vars(args).items() if v is not None})
        return replace(cls(), **{k: _convert(k, v) for k, v in values.items()})

    def frame_source(self):
        """The camera as a frame source (None without a camera): a device
        index, an image or a folder of images (looped, for demos), a video."""
        from shared import scanning

        spec = self.camera.strip()
        if spec.lower() in ("", "none", "off"):
            return None
        if spec.isdigit():
            return scanning.camera(int(spec))
        path = Path(spec)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            return scanning.ImageFiles(images, loop=True)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return scanning.ImageFiles([path], loop=True)
        return scanning.video_file(path)


def _convert(name: str, value):
    if name == "data_dir":
        return Path(value).expanduser()
    if name in ("idle_lock", "refresh", "heartbeat"):
        return float(value)
    if name == "device_token":
        return str(value).strip() or None
    if name == "exit_point":
        return str(value).upper() or None
    return value
