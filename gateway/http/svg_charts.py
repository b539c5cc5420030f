"""Charts drawn on the server as inline SVG: no script, no third-party request, nothing the
Content-Security-Policy has to allow. Pure functions from plain series to SVG text.

Every label is escaped; colours come from classes (staff.css), never style attributes; each
data point is one element with a class and data attributes, so a test can count them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.http.pages import esc

__all__ = ["Series", "bar_pairs", "heat_map", "line_chart", "stacked_bars"]

_W, _H = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 28
_COLOURS = 8
_LEVELS = 6


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label of its chart."""

    name: str
    values: Sequence[float]


def _ceiling(values: Sequence[float]) -> float:
    """A round top for the y axis, at least 1."""
    top = max(values, default=0.0)
    if top <= 5:
        return 5.0
    step = 10 ** (len(str(int(top))) - 1)
    return float(-(-top // step) * step)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _frame(kind: str, title: str, inner: str, legend: Sequence[str] = ()) -> str:
    keys = "".join(
        f'<li><span class="key s{i % _COLOURS}"></span>{esc(name)}</li>'
        for i, name in enumerate(legend)
    )
    legend_html = f'<ul class="legend">{keys}</ul>' if keys else ""
    return (
        f'<figure class="chart {esc(kind)}"><figcaption>{esc(title)}</figcaption>'
        f'<svg class="chart-svg" viewBox="0 0 {_W} {_H}" role="img" aria-label="{esc(title)}"'
        f' xmlns="http://www.w3.org/2000/svg">{inner}</svg>{legend_html}</figure>'
    )


def _axes(top: float, labels: Sequence[str]) -> str:
    """The y scale (0, half, top) and a few of the x labels (first, middle, last)."""
    parts = []
    for share in (0.0, 0.5, 1.0):
        y = _H - _BOTTOM - share * (_H - _TOP - _BOTTOM)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(_fmt(top * share))}</text>"
        )
    if labels:
        shown = sorted({0, len(labels) // 2, len(labels) - 1})
        for i in shown:
            x = _x(i, len(labels))
            anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
            if len(labels) == 1:
                anchor = "middle"
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{_H - 8}" text-anchor="{anchor}">'
                f"{esc(labels[i])}</text>"
            )
    return "".join(parts)


def _x(i: int, n: int) -> float:
    width = _W - _LEFT - _RIGHT
    return _LEFT + (width * (i + 0.5) / n if n else 0.0)


def _y(value: float, top: float) -> float:
    return _H - _BOTTOM - (value / top) * (_H - _TOP - _BOTTOM)


def _point(cls: str, series: str, label: str, value: float, shape: str) -> str:
    """One data point's attributes and tooltip around `shape` (the element's geometry)."""
    return (
        f'<{shape} class="{cls}" data-series="{esc(series)}" data-label="{esc(label)}"'
        f' data-value="{esc(_fmt(value))}"><title>{esc(series)}, {esc(label)}: '
        f"{esc(_fmt(value))}</title></{shape.split(' ', 1)[0]}>"
    )


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Lines, one per series, with a point per label (e.g. per day)."""
    top = _ceiling([v for s in series for v in s.values])
    n = len(labels)
    body = [_axes(top, labels)]
    for k, s in enumerate(series):
        colour = f"s{k % _COLOURS}"
        xy = [(_x(i, n), _y(float(v), top)) for i, v in enumerate(s.values[:n])]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        body.append(f'<polyline class="line {colour}" points="{path}"/>')
        body.extend(
            _point(
                f"point {colour}",
                s.name,
                labels[i],
                float(s.values[i]),
                f'circle cx="{x:.1f}" cy="{y:.1f}" r="3"',
            )
            for i, (x, y) in enumerate(xy)
        )
    return _frame("line-chart", title, "".join(body), [s.name for s in series])


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """A bar per label, its series stacked (e.g. answered and missed calls per day)."""
    n = len(labels)
    totals = [sum(float(s.values[i]) for s in series) for i in range(n)]
    top = _ceiling(totals)
    width = max(1.0, (_W - _LEFT - _RIGHT) / max(n, 1) * 0.8)
    body = [_axes(top, labels)]
    for i, label in enumerate(labels):
        base = 0.0
        for k, s in enumerate(series):
            value = float(s.values[i])
            y0, y1 = _y(base, top), _y(base + value, top)
            base += value
            geometry = (
                f'rect x="{_x(i, n) - width / 2:.1f}" y="{y1:.1f}" width="{width:.1f}"'
                f' height="{y0 - y1:.1f}"'
            )
            body.append(_point(f"bar s{k % _COLOURS}", s.name, label, value, geometry))
    return _frame("bar-chart", title, "".join(body), [s.name for s in series])


def bar_pairs(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Bars side by side per label, one per series (e.g. a pool's size and its peak use)."""
    n, m = len(labels), max(len(series), 1)
    top = _ceiling([v for s in series for v in s.values])
    group = (_W - _LEFT - _RIGHT) / max(n, 1) * 0.8
    width = group / m
    body = [_axes(top, labels)]
    for i, label in enumerate(labels):
        for k, s in enumerate(series):
            value = float(s.values[i])
            x = _x(i, n) - group / 2 + k * width
            geometry = (
                f'rect x="{x:.1f}" y="{_y(value, top):.1f}" width="{width * 0.9:.1f}"'
                f' height="{_y(0, top) - _y(value, top):.1f}"'
            )
            body.append(_point(f"bar s{k % _COLOURS}", s.name, label, value, geometry))
    return _frame("pair-chart", title, "".join(body), [s.name for s in series])


def heat_map(
    title: str, rows: Sequence[str], columns: Sequence[str], grid: Sequence[Sequence[float]]
) -> str:
    """A cell per row and column (e.g. weekday x hour), shaded in levels of the largest value."""
    top = max((v for row in grid for v in row), default=0) or 1
    left, head = 90, 18
    cw = (_W - left - _RIGHT) / max(len(columns), 1)
    ch = (_H - head - 4) / max(len(rows), 1)
    body = [
        f'<text class="tick" x="{left + (j + 0.5) * cw:.1f}" y="12" text-anchor="middle">'
        f"{esc(col)}</text>"
        for j, col in enumerate(columns)
        if j % 3 == 0
    ]
    for r, (name, row) in enumerate(zip(rows, grid, strict=False)):
        y = head + r * ch
        body.append(
            f'<text class="tick" x="{left - 6}" y="{y + ch / 2 + 4:.1f}" text-anchor="end">'
            f"{esc(name)}</text>"
        )
        for j, value in enumerate(row[: len(columns)]):
            level = 0 if not value else 1 + int((_LEVELS - 2) * float(value) / top + 0.5)
            geometry = (
                f'rect x="{left + j * cw:.1f}" y="{y:.1f}" width="{cw - 1:.1f}"'
                f' height="{ch - 1:.1f}" data-row="{esc(name)}" data-column="{esc(columns[j])}"'
            )
            body.append(_point(f"cell level-{level}", name, columns[j], float(value), geometry))
    return _frame("heat-map", title, "".join(body))
