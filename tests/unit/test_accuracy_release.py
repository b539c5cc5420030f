"""docs/accuracy.md as `make accuracy` keeps it: one section per release, newest first, a rerun of
the same version and commit replacing its own section; each row says whether it meets the goal."""

from __future__ import annotations

import pytest

from bench.accuracy_release import merge, render

pytestmark = pytest.mark.timeout(30)


def meta(commit: str) -> dict[str, str]:
    return {
        "version": "0.1.0",
        "commit": commit,
        "date": "2026-12-01",
        "machine": "2 CPUs",
        "policy": "reuse",
    }


def run(seed: int, right: float, wrong: float) -> dict[str, object]:
    return {
        "seed": seed,
        "pool": 136,
        "multiple": 1.2,
        "calls": 211,
        "ctgw": {"right": right, "wrong": wrong, "unattributed": round(100 - right - wrong, 2)},
        "naive": {"right": 87.2, "wrong": 12.8},
    }


def test_a_row_says_whether_it_meets_the_goal() -> None:
    text = render(meta("aaa"), [run(1, 99.0, 0.5), run(2, 99.5, 0.51), run(3, 98.9, 0.0)], [])
    rows = [line for line in text.splitlines() if line.startswith("| ") and "seed" not in line]
    assert [row.split("|")[5].strip() for row in rows] == ["**yes**", "no", "no"]


def test_sections_are_newest_first_and_a_rerun_replaces_its_own() -> None:
    first = merge("", render(meta("aaa"), [run(1, 95.0, 5.0)], []))
    second = merge(first, render(meta("bbb"), [run(1, 99.5, 0.4)], []))
    titles = [line for line in second.splitlines() if line.startswith("## ")]
    assert titles == ["## ctgw 0.1.0 (bbb, 2026-12-01)", "## ctgw 0.1.0 (aaa, 2026-12-01)"]
    again = merge(second, render(meta("bbb"), [run(1, 100.0, 0.0)], []))
    assert [line for line in again.splitlines() if line.startswith("## ")] == titles
    assert "100.0 / 0.0" in again and "99.5 / 0.4" not in again
    assert "95.0 / 5.0" in again  # the older release is kept
    assert again.startswith("# Accuracy per release")
