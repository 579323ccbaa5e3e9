"""Settings of the traveller's app: defaults, the environment, then flags.

```
TAXFREE_TRAVELLER_API_URL=http://127.0.0.1:5000   --api-url
TAXFREE_TRAVELLER_DATA_DIR=~/.local/share/taxfree-traveller  --data-dir
TAXFREE_TRAVELLER_CAMERA=0                        --camera  (index, "none", an image, a folder of images)
TAXFREE_TRAVELLER_SIMULATE=52.3105,4.7683,AMS-D1-01,<secret hex>   --simulate
```
``--simulate`` replaces GPS and Bluetooth with a phone standing at that
place near that sensor post (desktop demos; ``make traveller`` uses the
demo's Schiphol post).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_PREFIX = "TAXFREE_TRAVELLER_"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass(frozen=True)
class TravellerConfig:
    api_url: str = "http://127.0.0.1:5000"
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "share" / "taxfree-traveller")
    camera: str = "0"
    simulate: str = ""  # "lat,lon[,post_id,secret_hex]"
    language: str = ""

    def presence(self):
        """The presence provider: simulated if asked, else the phone's sensors."""
        from .presence import AndroidPresence, SimulatedPresence

        if self.simulate or not _on_android():
            parts = [p.strip() for p in self.simulate.split(",")] if self.simulate else []
            lat, lon = (float(parts[0]), float(parts[1])) if len(parts) >= 2 else (None, None)
            post = parts[2] if len(parts) >= 3 else None
            secret = bytes.fromhex(parts[3]) if len(parts) >= 4 else b""
            return SimulatedPresence(lat=lat, lon=lon, post_id=post, secret=secret)
        return AndroidPresence()

    def frame_source(self):
        from shared import scanning

        spec = self.camera.strip()
        if spec.lower() in ("", "none", "off"):
            return None
        if spec.isdigit():
            return scanning.camera(int(spec))
        path = Path(spec)
        if path.is_dir():
            return scanning.ImageFiles(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                                       grey=False, loop=True)
        return scanning.ImageFiles([path], grey=False, loop=True)


def _on_android() -> bool:
    return "ANDROID_ARGUMENT" in os.environ


def load(argv: list[str] | None = None, environ: dict | None = None) -> TravellerConfig:
    environ = os.environ if environ is None else environ
    values = {name: environ[ENV_PREFIX + name.upper()] for name in ("api_url", "data_dir", "camera", "simulate",
                                                                    "language")
              if ENV_PREFIX + name.upper() in environ}
    parser = argparse.ArgumentParser(prog="taxfree-traveller", description="The traveller's tax-free app.")
    parser.add_argument("--api-url")
    parser.add_argument("--data-dir")
    parser.add_argument("--camera")
    parser.add_argument("--simulate", help="lat,lon[,post_id,secret_hex]: a simulated phone's place and post")
    parser.add_argument("--language")
    args = parser.parse_args(argv)
    values.update({k: v for k, v in vars(args).items() if v is not None})
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"]).expanduser()
    return replace(TravellerConfig(), **values)
