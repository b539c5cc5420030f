"""Measure swap.js: size served, time to swapped numbers, page load with and without it.

Usage: .venv/bin/python -m bench.swapjs [--runs N]
Starts `ctgw serve` on a free loopback port with a temp config (tests/browser/harness.py) and
drives Debian's /usr/bin/chromium with Playwright, like the browser tests.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from gateway.swapjs import STATIC_DIR, load_swap_script
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.harness import Gateway
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


def _measure(browser: Any, base: str, runs: int) -> None:
    with_url, without_url = f"{base}/demo/", f"{base}/demo/?ctgw=off"
    for label, fresh in (("first visit (new visitor, cold cache)", True), ("repeat view", False)):
        loads_with: list[float] = []
        loads_without: list[float] = []
        swaps: list[float] = []
        shared = None if fresh else browser.new_context()
        if shared is not None:
            _load(shared, with_url, True)  # warm the cache and the stored session
            _load(shared, without_url, False)
        for _ in range(runs):
            # Interleaved, so drift on the machine hits both sides alike.
            for url, target, swapped in (
                (with_url, loads_with, True),
                (without_url, loads_without, False),
            ):
                context = shared or browser.new_context()
                load_ms, swap_ms = _load(context, url, swapped)
                target.append(load_ms)
                if swap_ms is not None:
                    swaps.append(swap_ms)
                if shared is None:
                    context.close()
        if shared is not None:
            shared.close()
        ratio = statistics.median(loads_with) / statistics.median(loads_without)
        print(f"\n{label}, {runs} runs each")
        print(f"  navigation start -> numbers swapped  {_median(swaps)}")
        print(f"  load event, with swap.js             {_median(loads_with)}")
        print(f"  load event, without swap.js          {_median(loads_without)}")
        print(f"  ratio with/without (median)          {ratio:.3f}  (target <= 1.05)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    _sizes()
    with tempfile.TemporaryDirectory() as tmp:
        gateway = Gateway(Path(tmp)).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    _measure(browser, gateway.url, args.runs)
                finally:
                    browser.close()
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
