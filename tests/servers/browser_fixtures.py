"""Headless Chromium (Debian's package) driven by Playwright, against the live server.

Never downloads a browser: it uses ``/usr/bin/chromium`` (or ``KNOWLIX_CHROMIUM``), and
fails loudly when it is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = os.environ.get("KNOWLIX_CHROMIUM") or shutil.which("chromium") or ""
    if not path:
        raise RuntimeError(
            "Chromium not found: install Debian's `chromium` package (the browser tests "
            "never download one) or set KNOWLIX_CHROMIUM."
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole run."""
    # Playwright's sync API runs an event loop; Django must allow ORM calls around it.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def is_csp_violation(text: str) -> bool:
    """A console message of Chromium's about a Content-Security-Policy refusal."""
    return "Content Security Policy" in text or "Content-Security-Policy" in text


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    """A fresh browser context (no cookies) with a page; screenshots go to var/screenshots.

    Every page must work under the Content-Security-Policy: a CSP violation in the
    console (an inline script, a remote image...) fails the test that caused it.
    """
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if is_csp_violation(msg.text) else None,
    )
    page.on("pageerror", lambda exc: violations.append(f"page error: {exc}"))
    page.csp_violations = violations  # tests that expect one may read and clear it
    yield page
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def login(page):
    """Log in through the real login form: ``login(user)`` (password ``pw-<username>``)."""

    def do_login(user, password: str | None = None):
        page.goto("/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password or f"pw-{user.username}")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        return page

    return do_login
