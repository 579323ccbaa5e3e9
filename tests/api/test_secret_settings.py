"""Secrets a server must have: given in production, generated for development."""
from __future__ import annotations

import stat

import pytest

from api import create_app
from api.config import ConfigError, is_production
from shared import risk


def _app(tmp_path, monkeypatch, **env):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("TAXFREE_ENV", "RISK_SAMPLING_KEY", "RISK_POLICY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})


def test_production_is_recognised_by_an_explicit_setting():
    assert is_production({"TAXFREE_ENV": "production"})
    assert is_production({"TAXFREE_ENV": " Production "})
    assert not is_production({})
    assert not is_production({"TAXFREE_ENV": "development"})


def test_a_production_server_refuses_to_start_without_the_sampling_key(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="RISK_SAMPLING_KEY"):
        _app(tmp_path, monkeypatch, TAXFREE_ENV="production")
    # Nothing was generated behind the operator's back.
    assert not (tmp_path / "instance" / "risk_sampling_key").exists()


def test_a_production_server_starts_with_the_sampling_key_it_was_given(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch, TAXFREE_ENV="production", RISK_SAMPLING_KEY="k" * 40)
    assert app.config["RISK_SAMPLING_KEY"] == "k" * 40


def test_a_short_sampling_key_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="at least 32"):
        _app(tmp_path, monkeypatch, RISK_SAMPLING_KEY="guessable")


def test_development_generates_the_sampling_key_once_in_the_instance_folder(tmp_path, monkeypatch):
    first = _app(tmp_path, monkeypatch).config["RISK_SAMPLING_KEY"]
    path = tmp_path / "instance" / "risk_sampling_key"
    assert path.read_text() == first and len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _app(tmp_path, monkeypatch).config["RISK_SAMPLING_KEY"] == first


def test_two_servers_with_other_keys_pick_other_forms(tmp_path, monkeypatch):
    ids = [f"NL{n:07d}" for n in range(400)]
    one = _app(tmp_path / "a", monkeypatch).config["RISK_SAMPLING_KEY"].encode()
    two = _app(tmp_path / "b", monkeypatch).config["RISK_SAMPLING_KEY"].encode()
    assert {f for f in ids if risk.is_sampled(one, f, 0.1)} != {f for f in ids if risk.is_sampled(two, f, 0.1)}


def test_a_seed_in_the_shown_risk_policy_stops_the_server(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="RISK_SAMPLING_KEY"):
        _app(tmp_path, monkeypatch, RISK_POLICY='{"seed": "nl-2026"}')
