"""The `ctgw` commands that work on the store: db migrate, keys, numbers, report."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway.config import Config
from gateway.store.database import Database
from gateway.store.keys import KeyNameTaken, create_key, list_keys, revoke_key
from gateway.store.numbers import add_writes, list_numbers, numbers_taken
from gateway.store.sites import load_sites, pool_id_for, seed_sites
from gateway.store.sizing import replay_sizing
from numberpool.phone import InvalidNumber, normalise

if TYPE_CHECKING:
    from reports.pool_sizing import SizingReport

__all__ = ["STORE_COMMANDS", "CliError", "report_pools_options"]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


async def _migrate(config: Config, args: argparse.Namespace) -> int:
    db = await Database.open(config.store.url, migrate=False)
    try:
        applied = await db.migrate()
    finally:
        await db.close()
    print("applied: " + ", ".join(applied) if applied else "store is up to date")
    return 0


async def _with_db(config: Config, work: Callable[[Database], Awaitable[int]]) -> int:
    db = await Database.open(config.store.url)
    try:
        await seed_sites(db, config, datetime.now(UTC))
        return await work(db)
    finally:
        await db.close()


def _key_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise CliError("key name must be 1-100 printable characters")
    return name


async def _keys_create(config: Config, args: argparse.Namespace) -> int:
    name = _key_name(args.name)

    async def work(db: Database) -> int:
        try:
            key = await create_key(db, name, datetime.now(UTC))
        except KeyNameTaken:
            raise CliError(
                f"an API key named '{name}' exists already: choose another name, or revoke it "
                f"first with: ctgw keys revoke {name}"
            ) from None
        print(key)
        print(f"(API key '{name}' created; it is shown only this once)", file=sys.stderr)
        return 0

    return await _with_db(config, work)


async def _keys_list(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        keys = await list_keys(db)
        if not keys:
            print("no API keys (create one with: ctgw keys create NAME)", file=sys.stderr)
        for key in keys:
            state = f"revoked {key.revoked_at}" if key.revoked_at else "live"
            print(f"{key.name}\tcreated {key.created_at}\t{state}")
        return 0

    return await _with_db(config, work)


async def _keys_revoke(config: Config, args: argparse.Namespace) -> int:
    name = _key_name(args.name)

    async def work(db: Database) -> int:
        if not await revoke_key(db, name, datetime.now(UTC)):
            raise CliError(f"no live API key named '{name}' (see: ctgw keys list)")
        print(f"API key '{name}' revoked; a running gateway refuses it from now on")
        return 0

    return await _with_db(config, work)


async def _add_numbers(config: Config, site_key: str, target: str, raw: list[str]) -> int:
    region = config.phone.default_region
    try:
        target_e164 = normalise(target, region)
        numbers = [normalise(n, region) for n in raw]
    except InvalidNumber as exc:
        raise CliError(str(exc)) from None

    async def work(db: Database) -> int:
        sites = await load_sites(db)
        entry = sites.get(site_key)
        if entry is None:
            raise CliError(f"no site '{site_key}' (known: {', '.join(sorted(sites)) or 'none'})")
        pool_id = pool_id_for(site_key, target_e164)
        if entry.site.pool_by_id(pool_id) is None:
            raise CliError(f"site '{site_key}' has no pool for target {target_e164}")
        taken = numbers_taken(numbers, [e.site for e in sites.values()])
        if taken:
            raise CliError(f"already in use: {', '.join(sorted(taken))}")
        await db.write(add_writes(pool_id, numbers, datetime.now(UTC)))
        print(
            f"added {len(set(numbers))} number(s) to {pool_id}; a running gateway picks them "
            "up within 30 s"
        )
        return 0

    return await _with_db(config, work)


async def _numbers_add(config: Config, args: argparse.Namespace) -> int:
    return await _add_numbers(config, args.site, args.target, list(args.numbers))


async def _numbers_import(config: Config, args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8", newline="") as handle:  # noqa: ASYNC230 - a small file read once by the CLI
            rows = [row[0].strip() for row in csv.reader(handle) if row and row[0].strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from None
    rows = [r for r in rows if not r.lower().startswith(("number", "#"))]
    if not rows:
        raise CliError(f"{args.file} holds no numbers")
    return await _add_numbers(config, args.site, args.target, rows)


async def _numbers_list(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        for number, site, target in await list_numbers(db, args.site):
            print(f"{number}\t{site}\t{target}")
        return 0

    return await _with_db(config, work)


def report_pools_options(parser: argparse.ArgumentParser) -> None:
    """The options of `ctgw report pools` (cli.py builds the command)."""
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--since", help="sizing: start of the period (ISO 8601; default 7 days ago)"
    )
    parser.add_argument("--until", help="sizing: end of the period (ISO 8601; default now)")
    parser.add_argument("--sizes", help="sizing: pool sizes to replay, e.g. 10,20,40")


def _sizing_options(
    args: argparse.Namespace, now: datetime
) -> tuple[datetime, datetime, list[int]]:
    """The period and sizes of the sizing section; CliError saying which option is wrong."""
    from reports.pool_sizing import parse_moment, parse_sizes

    try:
        raw_until = getattr(args, "until", None)
        until = parse_moment(raw_until) if raw_until else now
        raw_since = getattr(args, "since", None)
        since = parse_moment(raw_since) if raw_since else until - timedelta(days=7)
    except ValueError as exc:
        raise CliError(f"--since/--until: {exc}") from None
    if since >= until:
        raise CliError("--since must be before --until")
    raw_sizes = getattr(args, "sizes", None)
    try:
        sizes = parse_sizes(raw_sizes) if raw_sizes is not None else []
    except ValueError as exc:
        raise CliError(f"--sizes {exc}") from None
    return since, until, sizes


async def _report_pools(config: Config, args: argparse.Namespace) -> int:
    from reports.pool_health import pool_health

    now = datetime.now(UTC)
    since, until, sizes = _sizing_options(args, now)

    async def work(db: Database) -> int:
        health = await pool_health(db, now)
        sizing: dict[str, SizingReport] = {}
        for entry in (await load_sites(db)).values():
            for pool in entry.site.pools:
                sizing[pool.pool_id] = await replay_sizing(
                    db, entry.site.key, pool, since, until, sizes
                )
        if args.json:
            print(
                json.dumps(
                    [
                        {**h.as_dict(), "sizing": sizing[h.pool_id].as_dict()}
                        if h.pool_id in sizing
                        else h.as_dict()
                        for h in health
                    ],
                    indent=2,
                )
            )
            return 0
        for h in health:
            print(h.line())
        for report in sizing.values():
            print("\n".join(report.lines()))
        return 0

    return await _with_db(config, work)


STORE_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {
    ("db", "migrate"): _migrate,
    ("keys", "create"): _keys_create,
    ("keys", "list"): _keys_list,
    ("keys", "revoke"): _keys_revoke,
    ("numbers", "add"): _numbers_add,
    ("numbers", "import"): _numbers_import,
    ("numbers", "list"): _numbers_list,
    ("report", "pools"): _report_pools,
}
