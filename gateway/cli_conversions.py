"""The `ctgw conversions` commands: import files for Google Ads and Microsoft Advertising
(suited to cron with --new-only), Baidu OCPC uploads, and what the store says was sent."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from gateway.cli_store import CliError
from gateway.config import Config
from gateway.store.conversions import CONVERSION_STATES, list_conversions
from gateway.store.database import Database
from gateway.store.report_rows import site_timezone
from gateway.store.sites import seed_sites
from gateway.webhooks.conversion_exports import export_conversions
from gateway.webhooks.conversion_sending import send_site_baidu
from gateway.webhooks.conversion_worker import write_file
from reports.conversion_files import FILE_PLATFORMS
from reports.conversions import GOOGLE_CLICK_IDS, PLATFORMS
from reports.period import Period, PeriodError, parse_day, zone

__all__ = ["CONVERSIONS_COMMANDS", "conversions_parsers"]

_DEFAULT_DAYS = 30


def conversions_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `sub` (argparse subparsers)."""
    conv = sub.add_parser("conversions", help="ad-platform conversions").add_subparsers(
        dest="action", required=True
    )
    export = conv.add_parser(
        "export", parents=[common], help="write an import file (cron: --new-only --output)"
    )
    export.add_argument("--site", required=True)
    export.add_argument("--platform", required=True, choices=sorted(FILE_PLATFORMS.values()))
    export.add_argument(
        "--click-id", default="gclid", choices=GOOGLE_CLICK_IDS, help="google-ads: id column"
    )
    export.add_argument("--since", help="first day YYYY-MM-DD (default: 29 days before until)")
    export.add_argument("--until", help="last day YYYY-MM-DD in the site's zone (default: today)")
    export.add_argument(
        "--new-only",
        action="store_true",
        help="only calls never exported to this platform; they are then recorded as sent",
    )
    export.add_argument("--output", metavar="FILE", help="write here (default: stdout)")
    export.add_argument(
        "--again", metavar="NAME", default="", help="the calls of this earlier new-only file again"
    )
    send = conv.add_parser(
        "send-baidu", parents=[common], help="upload new conversions to Baidu OCPC now"
    )
    send.add_argument("--site", help="one site (default: every site with baidu_ocpc enabled)")
    lst = conv.add_parser("list", parents=[common], help="conversions sent, when, the answer")
    lst.add_argument("--site", required=True)
    lst.add_argument("--platform", choices=PLATFORMS)
    lst.add_argument("--state", choices=CONVERSION_STATES)
    lst.add_argument("--limit", type=int, default=100)


async def _with_db(config: Config, work: Callable[[Database], Coroutine[Any, Any, int]]) -> int:
    db = await Database.open(config.store.url)
    try:
        await seed_sites(db, config, datetime.now(UTC))  # the config's sites are known keys
        return await work(db)
    finally:
        await db.close()


async def _tz(db: Database, site: str) -> str:
    tz = await site_timezone(db, site)
    if tz is None:
        raise CliError(f"no site has the key {site!r}")
    return tz


def _period(args: argparse.Namespace, tz: str, now: datetime) -> Period:
    until = args.until or now.astimezone(zone(tz)).date().isoformat()
    try:
        first = args.since or ""
        if not first:
            first = (parse_day(until, "until") - timedelta(days=_DEFAULT_DAYS - 1)).isoformat()
        return Period.parse(first, until, tz)
    except OverflowError:
        raise CliError("'until' is too early in the calendar") from None
    except (PeriodError, ValueError) as exc:
        raise CliError(str(exc)) from None


def _writable(path: Path) -> None:
    """Refuse an output file that cannot be written before anything is marked sent."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise CliError(f"cannot write {path}: a folder, or its folder is not writable")


async def _export(config: Config, args: argparse.Namespace) -> int:
    platform = next(p for p, n in FILE_PLATFORMS.items() if n == args.platform)
    if args.again and args.new_only:
        raise CliError("give --again or --new-only, not both")
    if args.output:
        _writable(Path(args.output))

    async def work(db: Database) -> int:
        now = datetime.now(UTC)
        period = _period(args, await _tz(db, args.site), now)
        made = await export_conversions(
            db,
            config,
            args.site,
            platform,
            period,
            now=now,
            new_only=args.new_only,
            click_id=args.click_id,
            again=args.again,
        )
        if args.output:
            try:
                write_file(Path(args.output), made.text)
            except OSError as exc:
                lost = args.new_only and made.count
                hint = f"; its calls are recorded as sent: --again {made.name}" if lost else ""
                raise CliError(f"cannot write {args.output}: {exc.strerror or exc}{hint}") from None
        else:
            sys.stdout.write(made.text)
        held = f", {made.held_back} held back as too recent" if made.held_back else ""
        recent = f", {made.too_recent} too recent for the platform yet" if made.too_recent else ""
        print(f"{made.count} conversions ({made.name}){held}{recent}", file=sys.stderr)
        return 0

    return await _with_db(config, work)


async def _send_baidu(config: Config, args: argparse.Namespace) -> int:
    sites = (
        [args.site]
        if args.site
        else [s.key for s in config.sites if s.conversions.baidu_ocpc.enabled]
    )
    if not sites:
        raise CliError("no site has conversions.baidu_ocpc enabled")

    async def work(db: Database) -> int:
        status = 0
        async with aiohttp.ClientSession() as session:
            for site in sites:
                await _tz(db, site)
                report = await send_site_baidu(db, config, site, datetime.now(UTC), session)
                if report is None:
                    print(f"{site}: baidu_ocpc not enabled or no token", file=sys.stderr)
                    status = 1
                    continue
                counts = " ".join(f"{k}={v}" for k, v in report.as_dict().items())
                print(f"{site}: {counts}")
                status = status or int(report.retry + report.rejected + report.failed > 0)
        return status

    return await _with_db(config, work)


async def _list(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        await _tz(db, args.site)
        rows = await list_conversions(
            db, args.site, platform=args.platform, state=args.state, limit=max(1, args.limit)
        )
        for row in rows:
            sent = row["sent_at"] or "-"
            answer = " ".join(str(row["answer"]).split())[:120]
            print(f"{row['call_id']}\t{row['platform']}\t{row['state']}\t{sent}\t{answer}")
        return 0

    return await _with_db(config, work)


CONVERSIONS_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {
    ("conversions", "export"): _export,
    ("conversions", "send-baidu"): _send_baidu,
    ("conversions", "list"): _list,
}
