"""The `ctgw demo` commands: the demo site's seeded history (`make run` seeds it before serving;
a real deployment never runs this)."""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.cli_store import CliError
from gateway.config import Config
from gateway.demo_history import DemoHistory, generate_history
from gateway.store.database import Database, sqlite_path
from gateway.store.history_import import import_history, replay_crm, site_call_count
from gateway.store.sites import load_sites, seed_sites
from gateway.store.staff import EmailTaken, create_user

__all__ = ["DEMO_COMMANDS", "demo_parsers"]

_MAX_DAYS = 3 * 366
# The demo's staff login: an admin, its password made at random and kept in a file beside the
# store (only the owner may read it), never a password written in the project.
DEMO_EMAIL = "demo@example.com"
_LOGIN_FILE = "demo-login.txt"
# Follow-ups older than this are taken as done (the demo's agents called back); newer stay open.
_SETTLED = timedelta(days=7)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= _MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, 1-{_MAX_DAYS}")
    return days


def demo_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `sub` (argparse subparsers)."""
    demo = sub.add_parser("demo", help="the demo site").add_subparsers(dest="action", required=True)
    seed = demo.add_parser(
        "seed",
        parents=[common],
        help="write a seeded, realistic history of visits and calls into a site that has no "
        "calls yet (for demos: a real deployment starts empty)",
    )
    seed.add_argument("--site", default="demo", help="site key (default: demo)")
    seed.add_argument("--days", type=_days, default=90, help="days of history up to now")
    seed.add_argument("--seed", type=int, default=1, help="random seed: the same seed, the same")


def _site_zone(config: Config, site_key: str) -> ZoneInfo:
    """The site's time zone from config (validated there); UTC for a site config does not name."""
    settings = next((s for s in config.sites if s.key == site_key), None)
    try:
        return ZoneInfo(settings.timezone if settings else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def _seed(config: Config, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    db = await Database.open(config.store.url)
    try:
        await seed_sites(db, config, now)
        entry = (await load_sites(db)).get(args.site)
        if entry is None:
            known = ", ".join(s.key for s in config.sites) or "none"
            raise CliError(f"no site '{args.site}' (known: {known})")
        stored = await site_call_count(db, args.site)
        if stored:
            print(f"demo: site '{args.site}' already has {stored} calls, left alone")
            await _demo_login(db, config)
            return 0
        history = generate_history(
            entry.site,
            now=now,
            days=args.days,
            seed=args.seed,
            tz=_site_zone(config, args.site),
            route_for=entry.destination_for,
        )
        await import_history(
            db,
            args.site,
            sessions=history.sessions,
            leases=history.leases,
            exhausted=history.exhausted,
            calls=history.calls,
            costs=history.costs,
        )
        await replay_crm(db, history.calls, config.crm.rules(), settled_before=now - _SETTLED)
        _say_seeded(args, history)
        await _demo_login(db, config)
    finally:
        await db.close()
    return 0


def _say_seeded(args: argparse.Namespace, history: DemoHistory) -> None:
    callers = len({c.record.caller for c in history.calls if c.record.caller})
    print(
        f"demo: wrote {args.days} days of seeded history into site '{args.site}':"
        f" {len(history.sessions)} visits, {len(history.calls)} calls from {callers} callers,"
        f" {len(history.costs)} campaign costs"
    )


async def _demo_login(db: Database, config: Config) -> None:
    """Make the demo's admin login once, and say where its password is."""
    where = sqlite_path(config.store.url).parent / _LOGIN_FILE
    password = secrets.token_urlsafe(12)
    try:
        await create_user(
            db,
            email=DEMO_EMAIL,
            name="Demo admin",
            role="admin",
            sites=(),
            password=password,
            at=datetime.now(UTC),
        )
    except EmailTaken:
        pass
    else:
        where.parent.mkdir(parents=True, exist_ok=True)
        # Created with owner-only permissions from the start: never readable by others.
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"e-mail: {DEMO_EMAIL}\npassword: {password}\n")
    url = f"http://{config.http.host}:{config.http.port}/staff/"
    print(f"demo: dashboard {url} (log in with the e-mail and password in {where})")


DEMO_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {("demo", "seed"): _seed}
