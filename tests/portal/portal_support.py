"""Helpers for the web pages' tests (a module of its own: ``conftest`` is
not one name pytest can import reliably when several test folders are run
together)."""
from __future__ import annotations

import re

from tests.builders import PASSWORD, World, item, traveller  # noqa: F401  (re-exported for the tests)

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
