"""The staff pool sizing view: each pool of a site replayed over a period at candidate sizes
(right / wrong / unattributed calls, the smallest size for 99 % right), as the API's
GET /v1/pools/{id}/sizing computes it: read and replayed off the event loop."""

from __future__ import annotations

import time

from aiohttp import web

from gateway.appkeys import CLOCK, DB, DESK
from gateway.http.pages import esc, page
from gateway.http.staff_auth import staff_page
from gateway.http.staff_scope import read_scope, scope_form
from gateway.http.svg_charts import Series, bar_pairs
from gateway.store.sizing import replay_sizing
from numberpool.pool import Pool
from reports.pool_sizing import SizingReport, describe

__all__ = ["pools", "sizing_table"]

# The sizing view defaults to a week, as the API does: replaying a quarter takes a while.
_DEFAULT_DAYS = 7
# The replay holds the GIL: a pause after each stretch of it lets FastAGI routes run.
_PAUSE_S = 0.001


def _breathe() -> None:
    time.sleep(_PAUSE_S)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _smallest(report: SizingReport, size: int | None) -> str:
    if not report.judged_calls:
        return "unknown (no call with a known visit)"
    return "none within reach" if size is None else f"{size} numbers"


def _meaning(report: SizingReport, policy: str) -> str:
    rules = report.policies.get(policy)
    return f" ({esc(describe(rules))})" if rules else ""


def sizing_table(report: SizingReport) -> str:
    """The replay's figures, a row per policy and size; the pool's own size marked."""
    rows = "\n".join(
        f'<tr class="size{" current" if f.size == report.current_size else ""}"'
        f' data-policy="{esc(f.policy)}" data-size="{f.size}">'
        f"<td>{esc(f.policy)}</td><td>{f.size}</td><td>{_share(f.right_share)}</td>"
        f"<td>{_share(f.wrong_share)}</td><td>{_share(f.share(f.unattributed))}</td>"
        f"<td>{f.peak_live}</td><td>{f.overflowed}/{f.sessions}</td><td>{f.reused}</td>"
        f"<td>{f.shared}</td></tr>"
        for f in report.figures
    )
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in (
            "Policy",
            "Size",
            "Right",
            "Wrong",
            "Unattributed",
            "Peak live",
            "Overflowed",
            "Reused",
            "Shared",
        )
    )
    smallest = "".join(
        f'<li data-policy="{esc(policy)}">{esc(policy)}'
        f"{_meaning(report, policy)}: {esc(_smallest(report, size))}</li>"
        for policy, size in report.smallest.items()
    )
    return (
        f"<p>Size now {report.current_size}; {report.calls} calls, {report.judged_calls} with a"
        f" known visit, {report.overflow_calls} on the overflow number.</p>"
        f'<h3>Smallest size for {report.target:.0%} right</h3><ul class="smallest">{smallest}</ul>'
        f'<table class="sizing"><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>'
    )


def _chart(report: SizingReport, policy: str) -> str:
    figures = [f for f in report.figures if f.policy == policy]
    if not figures:
        return ""
    return bar_pairs(
        f"Calls per pool size ({policy})",
        [str(f.size) for f in figures],
        [
            Series("right", [f.right for f in figures]),
            Series("wrong", [f.wrong for f in figures]),
            Series("unattributed", [f.unattributed for f in figures]),
        ],
    )


def _site_pools(request: web.Request, site: str) -> list[Pool]:
    entry = request.app[DESK].sites.get(site)
    return list(entry.site.pools) if entry is not None else []


@staff_page("admin", "marketer")
async def pools(request: web.Request) -> web.StreamResponse:
    scope = await read_scope(request, _DEFAULT_DAYS)
    if isinstance(scope, web.Response):
        return scope
    since = scope.period.start_utc
    until = min(scope.period.end_utc, request.app[CLOCK].now())
    sections = []
    for pool in _site_pools(request, scope.site):
        if until <= since:
            break
        report = await replay_sizing(
            request.app[DB], scope.site, pool, since, until, [], pace=_breathe
        )
        sections.append(
            f'<section class="pool" data-pool="{esc(pool.pool_id)}">'
            f"<h2>Pool {esc(pool.pool_id)} ({esc(pool.target)})</h2>"
            f"{sizing_table(report)}{_chart(report, pool.rules.when_exhausted)}</section>"
        )
    found = "\n".join(sections) or '<p class="empty">No pool to size in this period.</p>'
    body = (
        "<h1>Pool sizing</h1>\n"
        + scope_form(scope, "/staff/pools")
        + "<p>The period's own visits and calls replayed at other pool sizes.</p>\n"
        + found
    )
    return page(request, "Pools", body)
