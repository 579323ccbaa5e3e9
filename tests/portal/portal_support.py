"""Helpers for the web pages' tests (a module of its own: ``conftest`` is
not one name pytest can import reliably when several test folders are run
together)."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

# The API tests' world (exit points, retailers, users of every role, kiosk
# devices), loaded from its file, so both suites share one definition.
_spec = importlib.util.spec_from_file_location(
    "portal_tests_api_world", Path(__file__).parents[1] / "api" / "conftest.py")
api_world = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = api_world  # dataclasses look their module up there
_spec.loader.exec_module(api_world)
World = api_world.World
PASSWORD = api_world.PASSWORD
item = api_world.item
traveller = api_world.traveller

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form on the page at ``path``."""
    response = client.get(path)
    match = CSRF.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


def portal_login(client, username: str, password: str = PASSWORD):
    token = csrf_token(client, "/portal/login")
    return client.post("/portal/login", data={"csrf_token": token, "username": username, "password": password})


def browser_login(page, base: str, username: str) -> None:
    page.goto(f"{base}/portal/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form.stack button[type=submit]")
