"""The server-drawn SVG charts: a point per value, every label escaped, no style attribute."""

from __future__ import annotations

import re
from datetime import date, timedelta
from xml.etree import ElementTree

import pytest

from gateway.http.svg_charts import Series, bar_pairs, heat_map, line_chart, stacked_bars

pytestmark = pytest.mark.timeout(10)

EVIL = '<script>alert("x")</script>&'
SVG = "{http://www.w3.org/2000/svg}"


def _days(n: int) -> list[str]:
    first = date(2026, 3, 1)
    return [(first + timedelta(days=i)).isoformat() for i in range(n)]


def _parse(html: str) -> ElementTree.Element:
    """The chart as XML: it must be well-formed (escaping broke nothing)."""
    return ElementTree.fromstring(html)


def _points(root: ElementTree.Element, tag: str, cls: str) -> list[ElementTree.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if cls in e.get("class", "").split()]


@pytest.mark.parametrize("days", [1, 7, 31, 90])
def test_a_line_chart_has_a_point_per_day_per_series(days: int) -> None:
    labels = _days(days)
    series = [Series("all", list(range(days))), Series("google", [1] * days)]
    root = _parse(line_chart("Calls", labels, series))
    points = _points(root, "circle", "point")
    assert len(points) == 2 * days
    mine = [p for p in points if p.get("data-series") == "all"]
    assert [p.get("data-label") for p in mine] == labels
    assert [p.get("data-value") for p in mine] == [str(i) for i in range(days)]
    assert len(_points(root, "polyline", "line")) == 2


def test_stacked_bars_draw_a_bar_per_day_and_series_stacked_upwards() -> None:
    labels = _days(5)
    series = [Series("answered", [3, 0, 1, 2, 5]), Series("missed", [1, 1, 0, 0, 5])]
    root = _parse(stacked_bars("Outcome", labels, series))
    bars = _points(root, "rect", "bar")
    assert len(bars) == 10
    answered = [b for b in bars if b.get("data-series") == "answered"]
    missed = [b for b in bars if b.get("data-series") == "missed"]
    assert len(answered) == len(missed) == 5
    # The missed part of the last day sits on top of the answered part, with the same height.
    top_answered = float(answered[4].get("y", "0"))
    assert float(missed[4].get("y", "0")) + float(missed[4].get("height", "0")) == pytest.approx(
        top_answered, abs=0.2
    )


def test_a_heat_map_has_a_cell_per_weekday_and_hour_shaded_by_level() -> None:
    grid = [[0] * 24 for _ in range(7)]
    grid[0][9] = 10
    grid[6][23] = 1
    rows = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    root = _parse(heat_map("Grid", rows, [f"{h:02d}" for h in range(24)], grid))
    cells = _points(root, "rect", "cell")
    assert len(cells) == 7 * 24
    busiest = next(c for c in cells if c.get("data-row") == "Mon" and c.get("data-column") == "09")
    assert "level-5" in busiest.get("class", "") and busiest.get("data-value") == "10"
    empty = next(c for c in cells if c.get("data-row") == "Tue" and c.get("data-column") == "00")
    assert "level-0" in empty.get("class", "")


def test_bar_pairs_draw_each_series_beside_the_other() -> None:
    root = _parse(
        bar_pairs("Pools", ["a", "b"], [Series("size", [10, 20]), Series("peak", [4, 25])])
    )
    bars = _points(root, "rect", "bar")
    assert [(b.get("data-label"), b.get("data-series")) for b in bars] == [
        ("a", "size"),
        ("a", "peak"),
        ("b", "size"),
        ("b", "peak"),
    ]


def test_every_label_is_escaped_and_no_style_attribute_is_written() -> None:
    charts = [
        line_chart(EVIL, [EVIL, "x"], [Series(EVIL, [1, 2])]),
        stacked_bars(EVIL, [EVIL], [Series(EVIL, [1])]),
        bar_pairs(EVIL, [EVIL], [Series(EVIL, [1])]),
        heat_map(EVIL, [EVIL], [EVIL], [[1]]),
    ]
    for html in charts:
        assert "<script" not in html
        assert "&lt;script&gt;" in html
        assert not re.search(r"\sstyle\s*=", html)
        root = _parse(html)
        labels = {e.get("data-series") for e in root.iter() if e.get("data-series")}
        assert labels == {EVIL} or EVIL in labels


def test_an_empty_chart_still_draws() -> None:
    root = _parse(line_chart("Nothing", [], []))
    assert _points(root, "circle", "point") == []
