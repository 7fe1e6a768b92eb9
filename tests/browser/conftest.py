"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Skipped (with the reason) where /usr/bin/chromium or the playwright package is missing, so the suite
still runs on a machine without a browser; CI installs both. Playwright never downloads a browser here.

The pages run under the site's Content-Security-Policy, which has no 'unsafe-eval': give
`page.wait_for_function` a function ("() => ..."), since Playwright polls a bare expression with eval().
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scheduling.conftest import scheduler  # noqa: F401 - the real runscheduler process, as a fixture

CHROMIUM = Path(os.environ.get("ZQ_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser-pass-123"


def pytest_collection_modifyitems(config, items):
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -e '.[dev]')"
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django would then refuse the ORM calls
    # the tests make between browser steps. Allowed for this module only, and restored afterwards.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def admin_login(live_server, browser, django_user_model, settings):
    """A function that opens a new page logged in as a superuser (through the real login form)."""
    django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    contexts = []

    def login(next_path: str = "/admin/", *, locale: str = "en-US", width: int = 1400, height: int = 900):
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/admin/login/?next={next_path}")
        page.fill("#id_username", "boss")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}{next_path}")
        return page

    yield login
    for context in contexts:
        context.close()
