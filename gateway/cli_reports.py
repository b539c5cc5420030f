"""The `ctgw report` commands over calls: summaries, breakdowns and downloads, for cron jobs."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.cli_store import CliError
from gateway.config import Config
from gateway.store.database import Database
from gateway.store.report_rows import read_report, site_timezone
from gateway.store.sites import seed_sites
from reports.call_figures import DIMENSIONS, TOUCHES
from reports.call_report import REPORTS, ReportData, ReportSpec, report_tables
from reports.period import Period, PeriodError, parse_day, zone
from reports.report_files import report_file
from reports.tables import Table

__all__ = ["REPORT_COMMANDS", "report_parsers", "text_table"]

_FORMATS = ("table", "csv", "xlsx", "json")
_DEFAULT_DAYS = 30


def report_parsers(report: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `report` (argparse subparsers)."""
    calls = report.add_parser(
        "calls",
        parents=[common],
        help="call figures of a site (summary, breakdown, days, hours, agents)",
        description="Days are the site's own (its timezone); spam and test calls are left out.",
    )
    calls.add_argument("--site", required=True, help="site key")
    calls.add_argument("--since", help="first day, YYYY-MM-DD, today or yesterday")
    calls.add_argument("--until", help="last day (inclusive; default today)")
    calls.add_argument(
        "--report",
        choices=REPORTS,
        help="which report (default: breakdown with --by, else summary)",
    )
    calls.add_argument("--by", choices=DIMENSIONS, help="breakdown dimension")
    calls.add_argument("--touch", choices=TOUCHES, default="last", help="attribution view")
    calls.add_argument("--format", choices=_FORMATS, default="table")
    calls.add_argument("--output", metavar="FILE", help="write here instead of stdout")


def _day(text: str | None, today: datetime, default: str) -> str:
    if text in (None, ""):
        return default
    if text == "today":
        return today.date().isoformat()
    if text == "yesterday":
        return (today.date() - timedelta(days=1)).isoformat()
    return str(text)


def _period(args: argparse.Namespace, tz: str, now: datetime) -> Period:
    today = now.astimezone(zone(tz))
    until = _day(args.until, today, today.date().isoformat())
    try:
        since = _day(args.since, today, "")
        if not since:
            since = (parse_day(until, "until") - timedelta(days=_DEFAULT_DAYS - 1)).isoformat()
        return Period.parse(since, until, tz)
    except PeriodError as exc:
        raise CliError(f"--since/--until: {exc}") from None
    except OverflowError:
        raise CliError("--until: too early in the calendar") from None


def text_table(table: Table) -> str:
    """A table as aligned plain text for a terminal or a mail body."""

    def shown(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    cells = [list(table.columns), *([shown(v) for v in row] for row in table.rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]
    return "\n".join([table.name, *lines]) + "\n"


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).lstrip("-").isdigit() or text == "-"


def _render(data: ReportData, spec: ReportSpec, fmt: str) -> bytes:
    if fmt == "table":
        return "\n".join(text_table(t) for t in report_tables(data, spec)).encode("utf-8")
    return report_file(data, spec, fmt)


def _write(body: bytes, output: str | None, fmt: str) -> None:
    if output is None:
        if fmt == "xlsx" and sys.stdout.isatty():
            raise CliError("an XLSX file is binary: give --output FILE or redirect stdout")
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    target = Path(output)
    # Whole or not at all: a cron job's reader never sees half a file.
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.replace(tmp, target)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


async def _report_calls(config: Config, args: argparse.Namespace) -> int:
    kind = args.report or ("breakdown" if args.by else "summary")
    spec = ReportSpec(kind, args.by or "campaign", args.touch)
    now = datetime.now(UTC)
    db = await Database.open(config.store.url)
    try:
        await seed_sites(db, config, now)
        tz = await site_timezone(db, args.site)
        if tz is None:
            raise CliError(f"no site '{args.site}'")
        period = _period(args, tz, now)
        fmt = args.format
        body = await read_report(db, args.site, period, spec, lambda d: _render(d, spec, fmt))
    finally:
        await db.close()
    _write(body, args.output, args.format)
    if args.output:
        print(f"wrote {args.output} ({len(body)} bytes)", file=sys.stderr)
    return 0


REPORT_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {("report", "calls"): _report_calls}
