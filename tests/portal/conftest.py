"""Fixtures for the web pages: the API tests' ``world``, a logged-in test
client, and one headless Chromium for the whole session (Debian's
``/usr/bin/chromium`` through Playwright; nothing is downloaded)."""
from __future__ import annotations

import pytest

from portal_support import CHROMIUM, CHROMIUM_ARGS, portal_login


@pytest.fixture
def shop(client, world):
    """The test client, logged in to the portal as the retailer ``shop``."""
    response = portal_login(client, "shop")
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page; device scale 2 so a
    screenshot of the QR code has several pixels per module."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=2,
                                  locale="en-GB")
    page = context.new_page()
    yield page
    context.close()
