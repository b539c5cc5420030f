"""The staff overview: a site's figures for a period against the period before, and its charts
(calls per day by source, answered vs missed, the hour x weekday grid, pool use).

The calls are read and counted on a thread of their own (gateway/store/report_rows.py): a
quarter's overview never holds up a FastAGI route."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from gateway.appkeys import CLOCK, DB
from gateway.http.pages import esc, page
from gateway.http.staff_auth import staff_page
from gateway.http.staff_scope import Scope, read_scope, scope_form
from gateway.http.svg_charts import Series, bar_pairs, heat_map, line_chart, stacked_bars
from gateway.store.database import Database
from gateway.store.report_rows import read_overview
from reports.call_report import WEEKDAYS, overview_json
from reports.pool_health import pool_health

__all__ = ["dashboard"]

# Lines for the busiest sources; the rest are summed as one line.
_TOP_SOURCES = 5
_FIGURES = (
    ("calls", "Calls"),
    ("answered", "Answered"),
    ("missed", "Missed"),
    ("abandoned", "Abandoned"),
    ("first_time", "First-time callers"),
    ("avg_ring_seconds", "Avg ring (s)"),
    ("avg_talk_seconds", "Avg talk (s)"),
    ("visits", "Visits"),
    ("calls_per_100_visits", "Calls per 100 visits"),
    ("cost", "Cost"),
    ("cost_per_call", "Cost per call"),
)
_LOWER_IS_BETTER = frozenset({"missed", "abandoned", "avg_ring_seconds", "cost", "cost_per_call"})


@dataclass(frozen=True)
class Overview:
    """What the overview shows: the reports' JSON (the same figures the API gives)."""

    figures: dict[str, Any]
    days: list[dict[str, Any]]
    grid: list[list[int]]


async def _overview(db: Database, scope: Scope) -> Overview:
    """The summary, the days and the hour grid, read and counted at once on a thread."""
    figures = await read_overview(db, scope.site, scope.period, overview_json)
    return Overview(figures, figures["days"], figures["grid"])


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _cards(figures: dict[str, Any]) -> str:
    changes = figures["changes"]
    cards = []
    for name, label in _FIGURES:
        change = changes.get(name) or {}
        percent = change.get("percent")
        trend = "flat"
        if change.get("delta"):
            better = (change["delta"] > 0) != (name in _LOWER_IS_BETTER)
            trend = "better" if better else "worse"
        shown = "new" if percent is None and change.get("value") else "-"
        if percent is not None:
            shown = f"{percent:+.0f} %"
        cards.append(
            f'<div class="card" data-figure="{esc(name)}"><dt>{esc(label)}</dt>'
            f'<dd class="value">{esc(_number(change.get("value")))}</dd>'
            f'<dd class="change {trend}">{esc(shown)} <span class="before">'
            f"(before: {esc(_number(change.get('previous')))})</span></dd></div>"
        )
    before = figures.get("previous_period", {})
    return (
        f'<dl class="cards">{"".join(cards)}</dl>\n<p class="compare">Compared with '
        f"{esc(before.get('since', ''))} to {esc(before.get('until', ''))}.</p>"
    )


def _source_lines(days: list[dict[str, Any]]) -> list[Series]:
    totals: dict[str, int] = {}
    for day in days:
        for source, n in day["by_source"].items():
            totals[source] = totals.get(source, 0) + n
    ranked = sorted(totals, key=lambda s: (-totals[s], s))
    top, rest = ranked[:_TOP_SOURCES], set(ranked[_TOP_SOURCES:])
    lines = [
        Series(source or "(none)", [day["by_source"].get(source, 0) for day in days])
        for source in top
    ]
    if rest:
        lines.append(
            Series("other", [sum(n for s, n in d["by_source"].items() if s in rest) for d in days])
        )
    lines.insert(0, Series("all calls", [day["calls"] for day in days]))
    return lines


def _charts(view: Overview, pool_use: str) -> str:
    labels = [day["day"] for day in view.days]
    outcome = [
        Series(name, [d[name] for d in view.days]) for name in ("answered", "missed", "abandoned")
    ]
    hours = [f"{h:02d}" for h in range(24)]
    return (
        '<section class="charts">'
        + line_chart("Calls per day by source (last touch)", labels, _source_lines(view.days))
        + stacked_bars("Answered vs missed per day", labels, outcome)
        + heat_map("Calls by weekday and hour", WEEKDAYS, hours, view.grid)
        + f'<div class="pool-use">{pool_use}</div>'
        + "</section>"
    )


async def _pool_use(request: web.Request, scope: Scope) -> str:
    """Each pool's size beside its peak of live numbers over the period (to now at most)."""
    now = request.app[CLOCK].now()
    end = min(now, scope.period.end_utc)
    days = max(1, -(-(end - scope.period.start_utc) // timedelta(days=1)))
    pools = [p for p in await pool_health(request.app[DB], end, days) if p.site == scope.site]
    if not pools:
        return '<p class="empty">This site has no number pool.</p>'
    chart = bar_pairs(
        "Pool use: size and peak live numbers",
        [p.pool_id for p in pools],
        [
            Series("size", [p.size for p in pools]),
            Series("peak live", [p.peak_live for p in pools]),
        ],
    )
    notes = "".join(
        f"<li>{esc(p.pool_id)}: {p.peak_live} of {p.size} live at the peak"
        f" ({p.utilisation:.0%}), exhausted {p.exhausted} time(s)"
        f"{f', grow to {p.recommended_size}' if p.needs_growth else ''}.</li>"
        for p in pools
    )
    return f'{chart}<ul class="pool-notes">{notes}</ul>'


@staff_page("admin", "marketer")
async def dashboard(request: web.Request) -> web.StreamResponse:
    scope = await read_scope(request)
    if isinstance(scope, web.Response):
        return scope
    view = await _overview(request.app[DB], scope)
    body = (
        "<h1>Dashboard</h1>\n"
        + scope_form(scope, "/staff/dashboard")
        + _cards(view.figures)
        + _charts(view, await _pool_use(request, scope))
    )
    return page(request, "Dashboard", body)
