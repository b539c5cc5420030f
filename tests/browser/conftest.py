"""Fixtures for the browser tests: one Chromium per session, real gateway and site servers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import CustomerSite, Gateway

CHROMIUM = "/usr/bin/chromium"
# Headless Chromium says "HeadlessChrome", which the gateway's default bot list never leases to;
# the tests are visitors, so every browser and context they open sends a desktop Chrome's.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    f"--user-agent={DESKTOP_UA}",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _missing(reason: str) -> None:
    # Under CI a missing browser is a failure: nothing real may be skipped there.
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (tests/lab/setup.d/30-chromium.sh installs it)")
    pytest.skip(reason)


# Module scope, not session: sync Playwright keeps its event loop marked as running in this
# thread while it lives, which would break the asyncio tests of later modules.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        _missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A new visitor: its own cookies, storage and cache."""
    ctx = browser.new_context(user_agent=DESKTOP_UA)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CustomerSite]:
    served = CustomerSite(tmp_path_factory.mktemp("site")).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, site: CustomerSite) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("gateway"), origins=[site.url])
    try:
        yield gw.start()
    finally:
        gw.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
