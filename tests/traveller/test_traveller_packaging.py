"""The Android package's description (buildozer.spec) matches the code it
packages: the permissions the app asks for, a requirement for every library
the packaged code imports, and an entry point that starts the app. (The APK
itself cannot be built here: no Android SDK or NDK can be downloaded.)"""
from __future__ import annotations

import ast
import configparser
import re
import sys

from tests.servers import ROOT

PACKAGED = ("traveller_app", "kivy_common", "shared")
# Import name -> the name python-for-android knows it by.
DISTRIBUTION = {"PIL": "pillow", "cv2": "opencv", "jnius": "pyjnius", "jwt": "pyjwt", "bidi": "python-bidi",
                "zxingcpp": "zxing-cpp", "arabic_reshaper": "arabic-reshaper"}


def spec() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "buildozer.spec", encoding="utf-8")
    return parser["app"]


def listed(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", " ").split(",") if part.strip()]


def imported_libraries() -> set[str]:
    found = set()
    for package in PACKAGED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in PACKAGED}


def test_the_app_asks_for_camera_location_bluetooth_and_network_and_keeps_its_data_out_of_backups():
    app = spec()
    assert set(listed(app["android.permissions"])) == {
        "CAMERA", "ACCESS_FINE_LOCATION", "ACCESS_COARSE_LOCATION", "BLUETOOTH_SCAN", "BLUETOOTH_CONNECT",
        "INTERNET"}
    assert int(app["android.minapi"]) >= 31  # BLUETOOTH_SCAN / _CONNECT
    assert app["android.allow_backup"] == "False"  # the wallet holds the passport
    assert app["orientation"] == "portrait"


def test_every_library_the_packaged_code_imports_is_a_requirement():
    requirements = {re.split(r"[=<>]", r)[0].lower() for r in listed(spec()["requirements"])}
    assert {"python3", "kivy", "plyer", "pyjnius", "requests"} <= requirements
    assert "kivy==2.3.1" in listed(spec()["requirements"])
    libraries = imported_libraries()
    assert {"kivy", "requests", "zxingcpp", "tesserocr", "cv2", "jnius", "plyer"} <= libraries
    missing = sorted(lib for lib in libraries if DISTRIBUTION.get(lib, lib).lower() not in requirements)
    assert missing == []


def test_the_package_holds_the_app_its_catalogs_and_nothing_of_the_server():
    app = spec()
    assert app["source.dir"] == "."
    assert {"py", "kv", "po"} <= set(listed(app["source.include_exts"]))
    excluded = set(listed(app["source.exclude_dirs"]))
    assert {"api", "tests", "kiosk_app", "officer_app"} <= excluded
    assert not excluded & set(PACKAGED)
    entry = ast.parse((ROOT / "main.py").read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "traveller_app.main" for n in ast.walk(entry))
    # Nothing packaged imports the server side.
    assert not imported_libraries() & {"flask", "flask_smorest", "sqlalchemy", "api"}
