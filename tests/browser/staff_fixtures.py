"""The staff side of the browser tests: a gateway with staff users and a seeded history, a
logged-in Chromium page that records every console message and CSP violation; and the README
screenshot of the dashboard (`python -m tests.browser.staff_fixtures URL EMAIL OUT.png`, the
password on stdin).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PASSWORD", "WatchedPage", "log_in", "screenshot", "watch"]

PASSWORD = "correct horse battery staple"
# securitypolicyviolation events are no console messages: a page script cannot be injected
# (the CSP forbids inline script), so an init script records them where the test reads them.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@dataclass
class WatchedPage:
    """A page and what it said: console messages, page errors, dialogs."""

    page: Any
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def problems(self) -> list[str]:
        """Console errors and warnings (a CSP refusal is one), page errors, CSP violations."""
        return [*self.console, *self.errors, *self.failed, *self.csp_violations()]


def watch(context: Any) -> WatchedPage:
    """A new page of `context` whose console errors, page errors and dialogs are recorded."""
    context.add_init_script(_CSP_LISTENER)
    page = context.new_page()
    watched = WatchedPage(page)

    def on_console(msg: Any) -> None:
        # A failed load is recorded with its address by on_response (the message has none).
        if msg.type in ("error", "warning") and not msg.text.startswith("Failed to load"):
            watched.console.append(f"{msg.type}: {msg.text}")

    def on_response(response: Any) -> None:
        # Every failed load is a fault of the page (the layout names an inline icon, so not
        # even /favicon.ico is asked for).
        if response.status >= 400:
            watched.failed.append(f"{response.status} {response.url}")

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    page.on("dialog", on_dialog)
    page.on("response", on_response)
    return watched


def log_in(page: Any, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Log in through the staff login form; the page ends on the dashboard."""
    page.goto(f"{base_url}/staff/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', password)
    with page.expect_navigation():
        page.click('form.login button[type="submit"]')


def screenshot(base_url: str, email: str, password: str, out: str) -> None:
    """The dashboard at 1280x900 in headless Chromium, saved as `out` (the README's)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            log_in(page, base_url, email, password)
            page.goto(f"{base_url}/staff/dashboard")
            page.screenshot(path=out)
        finally:
            browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m tests.browser.staff_fixtures URL EMAIL OUT.png < password")
    screenshot(sys.argv[1], sys.argv[2], sys.stdin.readline().strip(), sys.argv[3])
