"""Measure swap.js: size served, time to swapped numbers, page load with and without it.

Usage: .venv/bin/python -m bench.swapjs [--runs N]
Starts `ctgw serve` on a free loopback port with a temp config (tests/browser/harness.py), and
the demo landing page on a separate site server (as a real site serves its own pages: with the
gateway serving the page too, its CSS and JS would queue behind the API on a busy machine).
Drives Debian's /usr/bin/chromium with Playwright, like the browser tests.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from gateway.http.swapjs import DEMO_DIR, STATIC_DIR, load_swap_script
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.harness import CustomerSite, Gateway
from tests.browser.pages import OBSERVE

LOAD_MS = "performance.getEntriesByType('navigation')[0].loadEventEnd"
SWAP_MS = "window.__ctgw.events.length ? window.__ctgw.events[0].t : null"


def _sizes() -> None:
    source = (STATIC_DIR / "swap.js").read_bytes()
    script = load_swap_script()
    print(f"swap.js source            {len(source):6d} B")
    print(f"swap.js minified          {len(script.body):6d} B")
    print(f"swap.js minified+gzip     {len(script.gzipped):6d} B  (served, budget 4096 B)")
    print(f"source gzip (reference)   {len(gzip.compress(source, 9)):6d} B")


def _load(context: Any, url: str, swapped: bool) -> tuple[float, float | None]:
    page = context.new_page()
    page.add_init_script(OBSERVE)
    page.goto(url, wait_until="load")
    swap_ms = None
    if swapped:
        page.wait_for_function("() => window.__ctgw.events.length > 0", timeout=5000)
        swap_ms = float(page.evaluate(SWAP_MS))
    load_ms = float(page.evaluate(LOAD_MS))
    page.close()
    return load_ms, swap_ms


def _median(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"median {statistics.median(values):7.1f} ms  (min {low:.1f}, max {high:.1f})"


def _site_pages(root: Path, gateway_url: str) -> None:
    """The demo landing page as a customer site serves it: with the embed tag, without it,
    with a one-statement async script of its own in its place (the floor any script costs),
    and with the tag but no data-site (swap.js fetched and compiled, then idle)."""
    (root / "demo").mkdir(parents=True)
    for name in ("demo.css", "demo.js"):
        (root / "demo" / name).write_bytes((DEMO_DIR / name).read_bytes())
    (root / "demo" / "empty.js").write_text("window.__e = 1;\n")
    page = (DEMO_DIR / "index.html").read_text()
    tag = '<script async src="/swap.js" data-site="demo"></script>\n'
    assert tag in page
    embedded = page.replace('src="/swap.js"', f'src="{gateway_url}/swap.js"')
    (root / "demo" / "with.html").write_text(embedded)
    (root / "demo" / "without.html").write_text(page.replace(tag, ""))
    (root / "demo" / "empty.html").write_text(
        page.replace(tag, '<script async src="/demo/empty.js"></script>\n')
    )
    # swap.js fetched and run, but with no data-site it stops at once: the cost of the tag alone.
    (root / "demo" / "inert.html").write_text(embedded.replace(' data-site="demo"', ""))


# Page variants, measured in rotation: (file, waits for swapped numbers).
VARIANTS = {
    "with swap.js": ("with", True),
    "without": ("without", False),
    "empty script": ("empty", False),
    "swap.js, no data-site": ("inert", False),
}


def _measure(browser: Any, base: str, runs: int) -> None:
    for label, fresh in (("first visit (new visitor, cold cache)", True), ("repeat view", False)):
        loads: dict[str, list[float]] = {name: [] for name in VARIANTS}
        swaps: list[float] = []
        ratios: list[float] = []
        shared = None if fresh else browser.new_context()
        if shared is not None:
            for page_name, swapped in VARIANTS.values():  # warm the cache and the stored session
                _load(shared, f"{base}/demo/{page_name}.html", swapped)
        names = list(VARIANTS)
        for run in range(runs):
            # Each run rotates the order, so drift and order effects hit every variant alike.
            order = names[run % len(names) :] + names[: run % len(names)]
            pair: dict[str, float] = {}
            for name in order:
                page_name, swapped = VARIANTS[name]
                context = shared or browser.new_context()
                load_ms, swap_ms = _load(context, f"{base}/demo/{page_name}.html", swapped)
                pair[name] = load_ms
                loads[name].append(load_ms)
                if swap_ms is not None:
                    swaps.append(swap_ms)
                if shared is None:
                    context.close()
            ratios.append(pair["with swap.js"] / pair["without"])
        if shared is not None:
            shared.close()
        base_ms = statistics.median(loads["without"])
        print(f"\n{label}, {runs} runs of each page")
        print(f"  navigation start -> numbers swapped  {_median(swaps)}")
        for name in names:
            print(f"  load event, {name:24s} {_median(loads[name])}")
        ratio = statistics.median(loads["with swap.js"]) / base_ms
        floor = statistics.median(loads["empty script"]) / base_ms
        print(f"  ratio of medians with/without        {ratio:.3f}  (target <= 1.05)")
        print(f"  median of paired ratios              {statistics.median(ratios):.3f}")
        inert = statistics.median(loads["swap.js, no data-site"]) / base_ms
        print(f"  floor: one-statement script/without  {floor:.3f}")
        print(f"  swap.js tag alone (no data-site)     {inert:.3f}")


LARGE_PAGE = """(n) => {
  const root = document.createElement('div');
  for (let i = 0; i < n; i++) {
    const p = document.createElement('p');
    p.innerHTML = 'Item ' + i + ' <b>in stock</b>, ref <span>' + (100000 + i) + '</span>. ' +
      (i % 50 ? 'Ask us about it.' : 'Call <span>(415)</span> 555-0100 today.');
    root.appendChild(p);
  }
  const nodes = root.querySelectorAll('*').length;
  const t0 = performance.now();
  window.ctgw.swap(root);
  return [nodes, performance.now() - t0, (root.textContent.match(/555-0100/g) || []).length];
}"""


def _scan_cost(browser: Any, base: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(OBSERVE)
    page.goto(f"{base}/demo/with.html")
    page.wait_for_function("() => window.__ctgw.events.length > 0", timeout=5000)
    times = []
    for _ in range(5):
        nodes, ms, left = page.evaluate(LARGE_PAGE, 2000)
        times.append(ms)
    context.close()
    print(f"\nscan of {nodes} elements (2,000 paragraphs, 40 numbers): {_median(times)}")
    print(f"  numbers left unswapped: {left}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    _sizes()
    with tempfile.TemporaryDirectory() as tmp:
        site = CustomerSite(Path(tmp) / "site")
        gateway = Gateway(Path(tmp), origins=[site.url], heartbeat_seconds=60)
        _site_pages(site.root, gateway.url)
        try:
            site.start()
            gateway.start()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    _measure(browser, site.url, args.runs)
                    _scan_cost(browser, site.url)
                finally:
                    browser.close()
        finally:
            gateway.stop()
            site.stop()


if __name__ == "__main__":
    main()
