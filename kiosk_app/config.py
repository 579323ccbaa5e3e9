"""Kiosk settings: an INI file, overridden by the environment, then by flags.

```
[kiosk]
api_url = https://taxfree.example/        ; TAXFREE_KIOSK_API_URL
device_token_file = /etc/taxfree/token    ; or device_token = ... (TAXFREE_KIOSK_DEVICE_TOKEN)
exit_point = AMS                          ; the airport code (boarding passes); TAXFREE_KIOSK_EXIT_POINT
desk_location = Departures 2, next to gate D1
languages = en nl de fr es it zh_CN ja ko ru ar tr
default_language = en
idle_timeout = 60                         ; seconds without a touch or scan
camera = 0                                ; index, "none", a video file or a folder of images
data_dir = /var/lib/taxfree-kiosk         ; offline queue, cached keys
sound = yes
heartbeat_interval = 30                   ; seconds between health reports to the API (fleet page)
```
The file is ``--config PATH``, else ``$TAXFREE_KIOSK_CONFIG``, else
``~/.config/taxfree-kiosk/kiosk.ini`` if it exists.
"""
from __future__ import annotations

import argparse
import configparser
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from shared.i18n import LANGUAGES

ENV_PREFIX = "TAXFREE_KIOSK_"
DEFAULT_FILE = Path.home() / ".config" / "taxfree-kiosk" / "kiosk.ini"


@dataclass(frozen=True)
class KioskConfig:
    api_url: str = "http://127.0.0.1:5000"
    device_token: str | None = None
    exit_point: str | None = None
    desk_location: str = ""
    languages: tuple[str, ...] = tuple(LANGUAGES)
    default_language: str = "en"
    idle_timeout: float = 60.0
    camera: str = "0"
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "share" / "taxfree-kiosk")
    sound: bool = True
    windowed: bool = False
    sync_interval: float = 10.0
    heartbeat_interval: float = 30.0

    def __post_init__(self):
        unknown = [code for code in self.languages if code not in LANGUAGES]
        if unknown:
            raise ValueError(f"unknown languages: {', '.join(unknown)} (known: {', '.join(LANGUAGES)})")
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")


_FIELDS = {
    "api_url": str, "device_token": str, "exit_point": str, "desk_location": str,
    "default_language": str, "camera": str, "idle_timeout": float, "sync_interval": float,
    "heartbeat_interval": float,
}


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "yes", "true", "on")


def _apply(values: dict, source: dict[str, str], where: str) -> None:
    for name, text in source.items():
        if name in _FIELDS:
            values[name] = _FIELDS[name](text.strip())
        elif name == "languages":
            values[name] = tuple(text.replace(",", " ").split())
        elif name == "data_dir":
            values[name] = Path(text.strip()).expanduser()
        elif name in ("sound", "windowed"):
            values[name] = _bool(text)
        elif name == "device_token_file":
            values["device_token"] = Path(text.strip()).expanduser().read_text().strip()
        else:
            raise ValueError(f"{where}: unknown setting {name!r}")


def load(path: str | Path | None = None, environ: dict | None = None, **overrides) -> KioskConfig:
    """Settings from the file, the environment and ``overrides`` (flags), in
    that order of increasing precedence."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    path = path or environ.get(ENV_PREFIX + "CONFIG")
    if path is None and DEFAULT_FILE.exists():
        path = DEFAULT_FILE
    if path is not None:
        parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
        if not parser.read(path, encoding="utf-8"):
            raise FileNotFoundError(f"no kiosk configuration at {path}")
        if parser.has_section("kiosk"):
            _apply(values, dict(parser["kiosk"]), str(path))
    from_env = {k[len(ENV_PREFIX):].lower(): v for k, v in environ.items()
                if k.startswith(ENV_PREFIX) and k != ENV_PREFIX + "CONFIG"}
    _apply(values, from_env, "environment")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(KioskConfig(), **values)


def from_args(argv: list[str] | None = None) -> KioskConfig:
    """Settings for the ``taxfree-kiosk`` command line."""
    parser = argparse.ArgumentParser(prog="taxfree-kiosk", description="Tax-free export validation kiosk")
    parser.add_argument("--config", help="INI file (section [kiosk])")
    parser.add_argument("--windowed", action="store_true", default=None,
                        help="a window instead of full screen (development)")
    parser.add_argument("--api-url")
    parser.add_argument("--camera", help="camera index, 'none', a video file or a folder of images")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args(argv)
    return load(args.config, windowed=args.windowed, api_url=args.api_url, camera=args.camera,
                data_dir=args.data_dir)
