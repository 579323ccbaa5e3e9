"""Keyboard-wedge scanners and the kiosk's settings (no window needed)."""
from __future__ import annotations

import pytest

from kiosk_app.config import KioskConfig, load
from kiosk_app.wedge import WedgeBuffer
from tests.kiosk.test_kiosk_desk import AMS_PEK, passport_zone


def test_a_passport_reader_typing_two_lines_gives_one_scan():
    wedge = WedgeBuffer()
    line1, line2 = passport_zone().split("\n")
    assert wedge.type(line1 + "\r") == []  # waits for the second line
    assert wedge.type(line2 + "\r") == [f"{line1}\n{line2}"]


def test_a_qr_or_boarding_pass_scanner_line_is_one_scan():
    wedge = WedgeBuffer()
    assert wedge.type(AMS_PEK + "\n") == [AMS_PEK]
    assert wedge.type("eyJ.abc.def\r\n") == ["eyJ.abc.def"]  # CRLF: one scan, no empty one


def test_a_scanner_without_a_terminator_completes_after_a_pause():
    now = [0.0]
    wedge = WedgeBuffer(pause=0.3, clock=lambda: now[0])
    wedge.type("eyJ.abc.def")
    assert wedge.idle() == []
    now[0] = 0.5
    assert wedge.idle() == ["eyJ.abc.def"]
    assert wedge.idle() == []


def test_settings_come_from_file_then_environment_then_flags(tmp_path):
    token = tmp_path / "token"
    token.write_text("dev_abc\n")
    ini = tmp_path / "kiosk.ini"
    ini.write_text(f"[kiosk]\napi_url = http://file\ndevice_token_file = {token}\nlanguages = en, nl ar\n"
                   "idle_timeout = 45 ; seconds\nexit_point = AMS\n")
    cfg = load(ini, environ={"TAXFREE_KIOSK_API_URL": "http://env", "TAXFREE_KIOSK_IDLE_TIMEOUT": "30"})
    assert (cfg.api_url, cfg.device_token, cfg.idle_timeout) == ("http://env", "dev_abc", 30.0)
    assert cfg.languages == ("en", "nl", "ar") and cfg.exit_point == "AMS" and not cfg.windowed
    assert load(ini, environ={}, windowed=True, api_url="http://flag").api_url == "http://flag"


@pytest.mark.parametrize("bad", [{"languages": ("en", "xx")}, {"default_language": "ja", "languages": ("en",)},
                                 {"idle_timeout": 0}])
def test_impossible_settings_are_refused(bad):
    with pytest.raises(ValueError):
        KioskConfig(**bad)


def test_an_unknown_setting_is_an_error_not_ignored(tmp_path):
    ini = tmp_path / "kiosk.ini"
    ini.write_text("[kiosk]\napi_ulr = http://typo\n")
    with pytest.raises(ValueError, match="api_ulr"):
        load(ini, environ={})
