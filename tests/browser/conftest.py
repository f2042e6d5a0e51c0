"""Fixtures of the browser tests: the real server, Debian's Chromium driven by Playwright, axe-core."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.site import Site, running_site

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).with_name("axe.min.js")  # axe-core 4.14.1 (MPL-2.0), vendored: no downloads in CI
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Where the tests save their screenshots: TEST_REID_SCREENSHOTS=docs refreshes the README's.
SCREENSHOTS = os.environ.get("TEST_REID_SCREENSHOTS")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the browser tests, saying why, where Chromium or Playwright is missing."""
    reason = None
    if not CHROMIUM.is_file():
        reason = f"the browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the browser tests need Playwright for Python (pip install -e '.[test]')"
    if reason:
        for item in items:
            if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The server, for one module's tests."""
    with running_site(tmp_path_factory.mktemp("site")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium, headless, started by Playwright from Debian's package."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
