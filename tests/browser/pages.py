"""Helpers to open pages as a visitor and read what swap.js did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["OBSERVE", "Visit", "nanp", "open_page", "uk"]

# Runs before any page script: records the ctgw:numbers event, CSP violations and layout shifts.
OBSERVE = """
window.__ctgw = {events: [], violations: [], shift: 0};
document.addEventListener('ctgw:numbers', function (e) {
  window.__ctgw.events.push({t: performance.now(), body: !!document.body, detail: e.detail});
});
document.addEventListener('securitypolicyviolation', function (e) {
  window.__ctgw.violations.push(e.violatedDirective + ' ' + e.blockedURI);
});
try {
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (e) {
      if (!e.hadRecentInput) window.__ctgw.shift += e.value;
    });
  }).observe({type: 'layout-shift', buffered: true});
} catch (e) {}
"""


@dataclass
class Visit:
    """One open page with everything it wrote to the console and every request it made."""

    page: Any
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def numbers(self, timeout: float = 5000) -> list[dict[str, str]]:
        """Wait for the ctgw:numbers event and return the numbers it carried."""
        self.page.wait_for_function("() => window.__ctgw.events.length > 0", timeout=timeout)
        numbers: list[dict[str, str]] = self.page.evaluate(
            "window.__ctgw.events[window.__ctgw.events.length - 1].detail.numbers"
        )
        return numbers

    def session_id(self) -> str:
        return str(self.page.evaluate("window.__ctgw.events[0].detail.session_id"))

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))

    def href(self, selector: str) -> str:
        return str(self.page.get_attribute(selector, "href"))

    def count(self, path_part: str) -> int:
        return sum(1 for r in self.requests if path_part in r)

    def sessions_created(self) -> int:
        return sum(1 for r in self.requests if r.startswith("POST ") and r.endswith("/v1/sessions"))


def open_page(context: Any, url: str) -> Visit:
    """Open `url` in a new tab of `context`, recording console messages, errors and requests."""
    page = context.new_page()
    visit = Visit(page)
    page.add_init_script(OBSERVE)
    page.on("console", lambda m: visit.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: visit.errors.append(str(e)))
    page.on("request", lambda r: visit.requests.append(f"{r.method} {r.url}"))
    page.goto(url)
    return visit


def nanp(e164: str) -> dict[str, str]:
    """The ways the demo page writes a North American number."""
    n = e164.removeprefix("+1")
    a, b, c = n[:3], n[3:6], n[6:]
    return {
        "paren": f"({a}) {b}-{c}",
        "dash": f"{a}-{b}-{c}",
        "dot": f"{a}.{b}.{c}",
        "intl": f"+1 {a} {b} {c}",
        "plain": n,
    }


def uk(e164: str) -> dict[str, str]:
    """The ways the London demo page writes a London (020) number."""
    n = e164.removeprefix("+44")
    area, a, b = n[:2], n[2:6], n[6:]
    return {
        "national": f"0{area} {a} {b}",
        "intl": f"+44 {area} {a} {b}",
        "trunk": f"+44 (0){area} {a} {b}",
        "idd": f"0044 {area} {a} {b}",
    }
