"""Settings of the traveller's app: defaults, the environment, then flags.

```
TAXFREE_TRAVELLER_API_URL=http://127.0.0.1:5000   --api-url
TAXFREE_TRAVELLER_DATA_DIR=~/.local/share/taxfree-traveller  --data-dir
TAXFREE_TRAVELLER_CAMERA=0                        --camera  (index, "none", an image, a folder of images)
TAXFREE_TRAVELLER_SIMULATE=52.3105,4.7683,AMS-D1-01,<secret hex>   --simulate
TAXFREE_TRAVELLER_SENSOR_POSTS=instance/demo-sensor-posts.json      --sensor-posts
```
``--simulate`` replaces GPS and Bluetooth with a phone standing at that
place near that sensor post (desktop demos). A post's secret and place may
come from a sensor posts file instead (``flask --app api seed-demo`` writes
the demo posts' to ``instance/demo-sensor-posts.json``): then
``--simulate AMS-D2-01`` is a phone standing beside that post, hearing its
tokens, and ``--simulate 52.3105,4.7683,AMS-D2-01`` one standing elsewhere
that hears them. ``make traveller`` stands beside the demo's Schiphol post.
"""
from __future__ import annotations

import argparse
import json
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
    simulate: str = ""  # "lat,lon[,post_id[,secret_hex]]" or "post_id"
    sensor_posts: str = ""  # a sensor posts file: each post's secret and place, for a simulated phone
    language: str = ""

    def presence(self):
        """The presence provider: simulated if asked, else the phone's sensors."""
        from .presence import AndroidPresence

        if self.simulate or not _on_android():
            return simulated_presence(self.simulate, self.sensor_posts)
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


class SimulationError(ValueError):
    """A --simulate that names a post the sensor posts file does not hold."""


def read_sensor_posts(path: str | Path) -> tuple[int, dict[str, dict]]:
    """The step in seconds and each post by id (``post_id``, ``secret`` as
    hex, ``lat``, ``lon``) of a sensor posts file, as ``seed-demo`` writes it."""
    data = json.loads(Path(path).read_text())
    return int(data.get("step_seconds", 30)), {p["post_id"]: p for p in data["posts"]}


def simulated_presence(spec: str, sensor_posts: str = ""):
    """A simulated phone from ``--simulate`` (and the posts file, if given)."""
    from .presence import SimulatedPresence

    parts = [p.strip() for p in spec.split(",")] if spec else []
    try:
        step, posts = read_sensor_posts(sensor_posts) if sensor_posts else (30, {})
    except FileNotFoundError:
        raise SimulationError(f"no sensor posts file {sensor_posts}: run `make run` first "
                              "(flask --app api seed-demo writes it)") from None
    lat = lon = post = None
    secret = b""
    if len(parts) == 1:  # a post's id: stand beside it
        post = parts[0]
    elif len(parts) >= 2:
        lat, lon = float(parts[0]), float(parts[1])
        post = parts[2] if len(parts) >= 3 else None
        secret = bytes.fromhex(parts[3]) if len(parts) >= 4 else b""
    if post and not secret:
        if post not in posts:
            where = sensor_posts or "no sensor posts file (--sensor-posts)"
            raise SimulationError(f"sensor post {post} is not in {where}: "
                                  "run `make run` (flask --app api seed-demo writes the demo posts) first")
        secret = bytes.fromhex(posts[post]["secret"])
        if lat is None:
            lat, lon = float(posts[post]["lat"]), float(posts[post]["lon"])
    return SimulatedPresence(lat=lat, lon=lon, post_id=post, secret=secret, step_seconds=step)


def _on_android() -> bool:
    return "ANDROID_ARGUMENT" in os.environ


def load(argv: list[str] | None = None, environ: dict | None = None) -> TravellerConfig:
    environ = os.environ if environ is None else environ
    values = {name: environ[ENV_PREFIX + name.upper()] for name in ("api_url", "data_dir", "camera", "simulate",
                                                                    "sensor_posts", "language")
              if ENV_PREFIX + name.upper() in environ}
    parser = argparse.ArgumentParser(prog="taxfree-traveller", description="The traveller's tax-free app.")
    parser.add_argument("--api-url")
    parser.add_argument("--data-dir")
    parser.add_argument("--camera")
    parser.add_argument("--simulate", help="lat,lon[,post_id[,secret_hex]] or post_id: a simulated phone's "
                                           "place and the sensor post it hears")
    parser.add_argument("--sensor-posts", help="a sensor posts file (instance/demo-sensor-posts.json) with the "
                                               "posts' secrets and places, for --simulate")
    parser.add_argument("--language")
    args = parser.parse_args(argv)
    values.update({k: v for k, v in vars(args).items() if v is not None})
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"]).expanduser()
    return replace(TravellerConfig(), **values)
