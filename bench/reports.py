"""Dashboard reports on a large store, against a plain GROUP BY of the same rows in the same run.

Run by hand: `.venv/bin/python bench/reports.py [--calls 1000000] [--sessions 10000000]
[--days 365] [--views 30,90,365] [--repeats 5] [--store FILE] [--keep]`. Writes the history
(bench/report_history.py) into a fresh store, then for each period length times, as the
gateway runs them (gateway/store/report_rows.py, on a thread beside the event loop):
- overview: the summary against the previous period, calls per day by source, the hour x weekday
  grid (what the dashboard's overview shows), read at once (read_overview) and, as overview3,
  by the three report routes one after the other,
- campaigns: the breakdown by campaign, last touch, with visits and costs,
- days CSV: the calls-per-day download as CSV,
each beside its ceiling: the same rows counted by one plain `GROUP BY` query (UTC days and hours,
no time zone, no first touch) on the same kind of read-only connection. While each runs a ticker
task wakes every 5 ms on the event loop and records how late it woke: the longest block.
Target (issue 12): every dashboard view under 1 s at 1 M calls, the loop never blocked > 20 ms.
The machine's speed swings: compare a view with its ceiling of the same run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report_history import SITE, write_history  # noqa: E402
from gateway.store import report_rows  # noqa: E402
from gateway.store.times import ts  # noqa: E402
from reports.call_report import ReportSpec, overview_json  # noqa: E402
from reports.period import Period  # noqa: E402
from reports.report_files import report_file  # noqa: E402

END = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # the history ends here; views end the day before
TZ = "America/New_York"
TICK_S = 0.005

_SCOPE = "site = ? AND started_at >= ? AND started_at < ? AND spam = 0 AND test_call = 0"
_CEILING_SUMMARY = (
    "SELECT state, count(*), sum(first_time), sum(ring_seconds), count(ring_seconds),"
    f" sum(talk_seconds), count(talk_seconds) FROM calls WHERE {_SCOPE} GROUP BY state"
)
_CEILING_DAYS = (
    "SELECT substr(started_at, 1, 10), json_extract(attribution, '$.source'), state, count(*)"
    f" FROM calls WHERE {_SCOPE} GROUP BY 1, 2, 3"
)
_CEILING_HOURS = (
    "SELECT strftime('%w', started_at), substr(started_at, 12, 2), count(*)"
    f" FROM calls WHERE {_SCOPE} GROUP BY 1, 2"
)
_CEILING_CAMPAIGNS = (
    "SELECT json_extract(attribution, '$.campaign'), count(*), sum(state = 'answered'),"
    " sum(state = 'missed'), sum(state = 'abandoned'), sum(first_time), avg(ring_seconds),"
    f" avg(talk_seconds) FROM calls WHERE {_SCOPE} GROUP BY 1"
)
_VISITS = "SELECT count(*) FROM sessions WHERE site = ? AND created_at >= ? AND created_at < ?"
_VISITS_BY_CAMPAIGN = (
    "SELECT utm_campaign, count(*) FROM sessions"
    " WHERE site = ? AND created_at >= ? AND created_at < ? GROUP BY 1"
)


def _span(period: Period) -> tuple[str, str, str]:
    return SITE, ts(period.start_utc), ts(period.end_utc)


def _on_thread(store: Path, work: Callable[[sqlite3.Connection], Any]) -> Awaitable[Any]:
    def run() -> Any:
        conn = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return work(conn)
        finally:
            conn.close()

    return asyncio.to_thread(run)


def ceiling_overview(store: Path, period: Period) -> Awaitable[Any]:
    def work(conn: sqlite3.Connection) -> Any:
        now, before = _span(period), _span(period.previous())
        return (
            conn.execute(_CEILING_SUMMARY, now).fetchall(),
            conn.execute(_CEILING_SUMMARY, before).fetchall(),
            conn.execute(_VISITS, now).fetchall(),
            conn.execute(_VISITS, before).fetchall(),
            conn.execute(_CEILING_DAYS, now).fetchall(),
            conn.execute(_CEILING_HOURS, now).fetchall(),
        )

    return _on_thread(store, work)


def ceiling_campaigns(store: Path, period: Period) -> Awaitable[Any]:
    def work(conn: sqlite3.Connection) -> Any:
        return (
            conn.execute(_CEILING_CAMPAIGNS, _span(period)).fetchall(),
            conn.execute(_VISITS_BY_CAMPAIGN, _span(period)).fetchall(),
        )

    return _on_thread(store, work)


def ceiling_days_csv(store: Path, period: Period) -> Awaitable[Any]:
    def work(conn: sqlite3.Connection) -> bytes:
        out = io.StringIO()
        csv.writer(out).writerows(conn.execute(_CEILING_DAYS, _span(period)))
        return out.getvalue().encode()

    return _on_thread(store, work)


async def overview(store: Path, period: Period) -> Any:
    """The dashboard's overview read at once (report_rows.read_overview)."""
    return await report_rows.read_overview(store, SITE, period, overview_json)


async def overview_3(store: Path, period: Period) -> Any:
    """The same overview from three report routes: summary, days, hours."""
    found = []
    for kind in ("summary", "days", "hours"):
        spec = ReportSpec(kind)
        found.append(
            await report_rows.read_report(
                store, SITE, period, spec, lambda d, s=spec: report_file(d, s, "json")
            )
        )
    return found


async def campaigns(store: Path, period: Period) -> Any:
    spec = ReportSpec("breakdown", "campaign", "last")
    return await report_rows.read_report(
        store, SITE, period, spec, lambda d: report_file(d, spec, "json")
    )


async def days_csv(store: Path, period: Period) -> Any:
    spec = ReportSpec("days")
    return await report_rows.read_report(
        store, SITE, period, spec, lambda d: report_file(d, spec, "csv")
    )


VIEWS: dict[str, tuple[Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]]] = {
    "overview": (overview, ceiling_overview),
    "overview3": (overview_3, ceiling_overview),
    "campaigns": (campaigns, ceiling_campaigns),
    "days csv": (days_csv, ceiling_days_csv),
}


async def timed(run: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Seconds `run` took, and the event loop's longest block meanwhile (seconds late)."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        while not done:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            worst = max(worst, loop.time() - before - TICK_S)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(TICK_S * 2)
    began = time.perf_counter()
    await run()
    took = time.perf_counter() - began
    done = True
    await ticker
    return took, worst


def _stats(values: list[float]) -> str:
    return f"{min(values):7.3f} {statistics.median(values):7.3f} {max(values):7.3f}"


def _lags(worst: list[float]) -> str:
    """The loop's longest block of all runs, and the median run's: one neighbour's burst on a
    2-core machine shows in the first, a report that holds the GIL in both."""
    return f"{max(worst) * 1000:5.1f}/{statistics.median(worst) * 1000:4.1f} ms"


async def measure(store: Path, view_days: list[int], repeats: int) -> list[dict[str, Any]]:
    results = []
    last = (END.astimezone(report_rows_zone()).date()).toordinal() - 1
    for days in view_days:
        first = datetime.fromordinal(last - days + 1).date()
        period = Period.parse(first.isoformat(), datetime.fromordinal(last).date().isoformat(), TZ)
        for name, (view, ceiling) in VIEWS.items():
            got: dict[str, list[float]] = {"view": [], "ceiling": [], "lag": [], "clag": []}
            for _ in range(repeats):
                # Alternated, so a swing in the machine's speed hits both alike.
                took, lag = await timed(lambda v=view, p=period: v(store, p))  # type: ignore[misc]
                ctook, clag = await timed(lambda c=ceiling, p=period: c(store, p))  # type: ignore[misc]
                got["view"].append(took)
                got["ceiling"].append(ctook)
                got["lag"].append(lag)
                got["clag"].append(clag)
            ratio = statistics.median(got["view"]) / statistics.median(got["ceiling"])
            print(
                f"{days:4d} d  {name:10s} view {_stats(got['view'])}  ceiling"
                f" {_stats(got['ceiling'])}  x{ratio:4.1f}  loop {_lags(got['lag'])}"
                f" (ceiling {_lags(got['clag'])})",
                flush=True,
            )
            results.append({"days": days, "view": name, **got})
    return results


def report_rows_zone() -> Any:
    from reports.period import zone

    return zone(TZ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365, help="days of history")
    parser.add_argument("--views", default="30,90,365", help="period lengths to time, in days")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", type=Path, help="store file (default: a temp file)")
    parser.add_argument("--reuse", action="store_true", help="use --store as it is")
    args = parser.parse_args()
    store = args.store or Path(tempfile.mkdtemp(prefix="ctgw-bench-reports-")) / "ctgw.db"
    if not args.reuse:
        began = time.perf_counter()
        took = write_history(
            store, calls=args.calls, sessions=args.sessions, days=args.days, end=END, tz=TZ
        )
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
        size = store.stat().st_size / 2**20
        print(
            f"history: {args.calls:,} calls, {args.sessions:,} sessions over {args.days} days"
            f" in {time.perf_counter() - began:.1f} s ({parts}); store {size:,.0f} MiB"
        )
    print(
        f"store {store}; min / median / max seconds of {args.repeats}; x = view / ceiling;"
        " loop = the event loop's longest block, all runs / the median run"
    )
    views = [int(d) for d in args.views.split(",")]
    asyncio.run(measure(store, views, args.repeats))


if __name__ == "__main__":
    main()
