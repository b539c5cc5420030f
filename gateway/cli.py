"""The `ctgw` command: serve, db, keys, numbers, report, doctor."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from gateway.app import create_app, describe_urls
from gateway.config import Config, ConfigError, load_config
from gateway.http.front import run_front
from gateway.http.fronts import listening_socket, serving_fronts
from gateway.logs import configure_logging
from gateway.process import prepare_runner
from gateway.store.database import Database, StoreError, Write, sqlite_path, ts
from gateway.store.file import damaged_store, store_fault
from gateway.store.keys import KeyNameTaken, create_key, list_keys, revoke_key
from gateway.store.sites import load_sites, pool_id_for, seed_sites
from gateway.systemd import SystemdNotifier
from gateway.telephony.doctor import check_asterisk_config
from numberpool.phone import InvalidNumber, normalise

__all__ = ["main"]

_DEFAULT_CONFIGS = ("conf/gateway.toml", "/etc/ctgw/gateway.toml")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _config_path(arg: str | None) -> str | None:
    if arg:
        return arg
    if os.environ.get("CTGW_CONFIG"):
        return os.environ["CTGW_CONFIG"]
    return next((p for p in _DEFAULT_CONFIGS if Path(p).exists()), None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctgw", description="call-tracking telephony gateway")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="TOML config (default conf/gateway.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", parents=[common], help="run the gateway")
    front = sub.add_parser("front", parents=[common], help="(started by serve: an HTTP front)")
    front.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    front.add_argument("--channel", required=True, help="the lease channel's Unix socket")
    front.add_argument("--core", required=True, help="the gateway app's Unix socket")
    db = sub.add_parser("db", help="store maintenance").add_subparsers(dest="action", required=True)
    db.add_parser("migrate", parents=[common], help="apply pending migrations")
    keys = sub.add_parser("keys", help="admin API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("name")
    keys.add_parser("list", parents=[common], help="list keys (never the keys themselves)")
    revoke = keys.add_parser("revoke", parents=[common], help="revoke a key: refused at once")
    revoke.add_argument("name")
    numbers = sub.add_parser("numbers", help="tracking numbers").add_subparsers(
        dest="action", required=True
    )
    add = numbers.add_parser("add", parents=[common], help="add numbers to a site's pool")
    add.add_argument("--site", required=True)
    add.add_argument("--target", required=True, help="the site number the pool swaps")
    add.add_argument("numbers", nargs="+")
    imp = numbers.add_parser("import", parents=[common], help="add numbers from a CSV/text file")
    imp.add_argument("--site", required=True)
    imp.add_argument("--target", required=True)
    imp.add_argument("file", help="one number per line (first column of a CSV)")
    lst = numbers.add_parser("list", parents=[common], help="list numbers")
    lst.add_argument("--site")
    report = sub.add_parser("report", help="reports").add_subparsers(dest="action", required=True)
    pools = report.add_parser("pools", parents=[common], help="pool health")
    pools.add_argument("--json", action="store_true")
    sub.add_parser("doctor", parents=[common], help="check config, store and Asterisk")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config: Config | None = None
    try:
        config = load_config(_config_path(args.config))
        configure_logging(config.log.level, config.log.format)
        handler = _COMMANDS[(args.command, getattr(args, "action", None))]
        status = asyncio.run(handler(config, args))
        sys.stdout.flush()  # here, so that a reader that went away is seen below
        return status
    except (ConfigError, StoreError, CliError) as exc:
        print(f"ctgw: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        # The store opened, then a page of it turned out damaged (or it became read-only).
        where = sqlite_path(config.store.url) if config else Path("?")
        print(f"ctgw: error: {store_fault(where, exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `ctgw numbers list | head`: the reader has all it wanted. Output still buffered
        # must not fail again when the interpreter flushes it at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a process killed by SIGPIPE
    except KeyboardInterrupt:
        return 130


async def _serve(config: Config, args: argparse.Namespace) -> int:
    log = structlog.get_logger()
    runner, stop = await prepare_runner(create_app(config))
    systemd = SystemdNotifier.from_environ()
    try:
        if config.http.workers:
            try:
                listener = listening_socket(config.http.host, config.http.port)
            except OSError as exc:
                raise CliError(_cannot_listen(config, exc)) from None
            async with serving_fronts(config, _config_path(args.config), runner, listener):
                log.info(
                    "gateway_started",
                    config=config.source,
                    http_fronts=config.http.workers,
                    **describe_urls(config),
                )
                systemd.ready(describe_urls(config)["api"])
                await stop.wait()
                log.info("gateway_stopping")  # the fronts finish their requests first
        else:
            site = web.TCPSite(runner, config.http.host, config.http.port, backlog=1024)
            try:
                await site.start()
            except OSError as exc:
                raise CliError(_cannot_listen(config, exc)) from None
            log.info("gateway_started", config=config.source, **describe_urls(config))
            systemd.ready(describe_urls(config)["api"])
            await stop.wait()
            log.info("gateway_stopping")
    finally:
        systemd.stopping()
        # Finishes in-flight requests, then runs the cleanup contexts (store closed cleanly).
        await runner.cleanup()
    log.info("gateway_stopped")
    return 0


def _cannot_listen(config: Config, exc: OSError) -> str:
    return (
        f"cannot listen on {config.http.host}:{config.http.port}: {exc.strerror}; "
        "set [http] port or CTGW_HTTP_PORT"
    )


async def _front(config: Config, args: argparse.Namespace) -> int:
    """An HTTP front process, started by `ctgw serve` when `[http] workers` is set."""
    return await run_front(config, args.fd, Path(args.channel), Path(args.core))


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
        taken = [n for n in numbers for e in sites.values() if e.site.owns(n)]
        if taken:
            raise CliError(f"already in use: {', '.join(sorted(set(taken)))}")
        now = ts(datetime.now(UTC))
        await db.write(
            [
                Write(
                    "INSERT INTO numbers (number, pool_id, added_at) VALUES (?, ?, ?)",
                    (n, pool_id, now),
                )
                for n in dict.fromkeys(numbers)
            ]
        )
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
        rows = await db.fetchall(
            "SELECT n.number, p.site, p.target FROM numbers n JOIN pools p USING (pool_id)"
            " WHERE ? IS NULL OR p.site = ? ORDER BY p.site, p.target, n.number",
            (args.site, args.site),
        )
        for row in rows:
            print(f"{row['number']}\t{row['site']}\t{row['target']}")
        return 0

    return await _with_db(config, work)


async def _report_pools(config: Config, args: argparse.Namespace) -> int:
    from reports.pool_health import pool_health

    async def work(db: Database) -> int:
        health = await pool_health(db, datetime.now(UTC))
        if args.json:
            print(json.dumps([h.as_dict() for h in health], indent=2))
        else:
            for h in health:
                print(h.line())
        return 0

    return await _with_db(config, work)


async def _doctor(config: Config, args: argparse.Namespace) -> int:
    problems = 0
    print(f"config: ok ({config.source})")
    try:
        path = sqlite_path(config.store.url)
        db = await Database.open(config.store.url)
        try:
            # Every page, not only the ones a start reads: damage found now, not mid-call.
            checked = [row[0] for row in await db.fetchall("PRAGMA quick_check")]
        except sqlite3.Error as exc:
            checked = [str(exc)]
        finally:
            await db.close()
        if checked != ["ok"]:
            raise StoreError(damaged_store(path, " ".join(" ".join(checked[:3]).split())))
        print(f"store: ok ({path})")
    except StoreError as exc:
        print(f"store: FAIL {exc}")
        problems += 1
    if config.ami.enabled:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(config.ami.host, config.ami.port), 3
            )
            writer.close()
            print(f"ami: reachable at {config.ami.host}:{config.ami.port}")
        except (OSError, TimeoutError) as exc:
            print(f"ami: FAIL cannot reach {config.ami.host}:{config.ami.port}: {exc}")
            problems += 1
    else:
        print("ami: disabled in config")
    lines, errors = await asyncio.to_thread(_asterisk_findings, config)
    print("\n".join(lines))
    return 1 if problems or errors else 0


def _asterisk_findings(config: Config) -> tuple[list[str], int]:
    """Asterisk's own config checked by the doctor: printable lines and the error count."""
    etc = Path(config.asterisk.config_dir)
    if not etc.is_dir():
        return [f"asterisk: config folder {etc} not found (set [asterisk] config_dir); skipped"], 0
    findings = check_asterisk_config(
        etc, username=config.ami.username, click_to_call=config.asterisk.click_to_call
    )
    lines = []
    for finding in findings:
        where = f" ({finding.file}:{finding.line})" if finding.file else ""
        lines.append(f"asterisk: {finding.level.upper()} {finding.code}: {finding.message}{where}")
    return lines, sum(f.level == "error" for f in findings)


_COMMANDS: dict[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {
    ("serve", None): _serve,
    ("front", None): _front,
    ("db", "migrate"): _migrate,
    ("keys", "create"): _keys_create,
    ("keys", "list"): _keys_list,
    ("keys", "revoke"): _keys_revoke,
    ("numbers", "add"): _numbers_add,
    ("numbers", "import"): _numbers_import,
    ("numbers", "list"): _numbers_list,
    ("report", "pools"): _report_pools,
    ("doctor", None): _doctor,
}
