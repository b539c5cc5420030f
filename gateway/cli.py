"""The `ctgw` command: its options, serve and doctor; the store's commands (db, keys, numbers,
report) are in gateway/cli_store.py."""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from gateway.app import create_app, describe_urls
from gateway.cli_conversions import CONVERSIONS_COMMANDS, conversions_parsers
from gateway.cli_demo import DEMO_COMMANDS, demo_parsers
from gateway.cli_reports import REPORT_COMMANDS, report_parsers
from gateway.cli_store import STORE_COMMANDS, CliError, report_pools_options
from gateway.cli_users import USERS_COMMANDS, users_parsers
from gateway.cli_webhooks import WEBHOOKS_COMMANDS, webhooks_parsers
from gateway.config import Config, ConfigError, load_config
from gateway.http.fronts import listening_socket, serving_fronts
from gateway.http.serving import prepare_runner
from gateway.logs import configure_logging
from gateway.redact import redact_url
from gateway.store.database import Database, StoreError, is_postgresql_url, sqlite_path
from gateway.store.file import damaged_store, store_fault
from gateway.store.pg.database import pg_fault
from gateway.systemd import SystemdNotifier
from gateway.telephony.doctor import check_asterisk_config
from gateway.telephony.doctor_ami import check_ami_user

__all__ = ["main"]

_DEFAULT_CONFIGS = ("conf/gateway.toml", "/etc/ctgw/gateway.toml")


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
    pools = report.add_parser("pools", parents=[common], help="pool health and sizing")
    report_pools_options(pools)
    report_parsers(report, common)
    users_parsers(sub, common)
    webhooks_parsers(sub, common)
    demo_parsers(sub, common)
    conversions_parsers(sub, common)
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
    except Exception as exc:
        # The PostgreSQL store refused a read or a write (a dropped table, a lost connection):
        # one line, as for SQLite's; anything else is a bug and keeps its traceback.
        fault = pg_fault(exc)
        if fault is None:
            raise
        print(f"ctgw: error: {fault}", file=sys.stderr)
        return 2


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


async def _doctor(config: Config, args: argparse.Namespace) -> int:
    problems = 0
    print(f"config: ok ({config.source})")
    try:
        print(f"store: ok ({await _store_checked(config.store.url)})")
    except StoreError as exc:
        print(f"store: FAIL {exc}")
        problems += 1
    if config.ami.enabled:
        # Logs in as the gateway would: what the running Asterisk grants, not manager.conf.
        live = await check_ami_user(config.ami, click_to_call=config.asterisk.click_to_call)
        for finding in live:
            print(f"ami: {finding.level.upper()} {finding.code}: {finding.message}")
        problems += sum(f.level == "error" for f in live)
    else:
        print("ami: disabled in config")
    lines, errors = await asyncio.to_thread(_asterisk_findings, config)
    print("\n".join(lines))
    return 1 if problems or errors else 0


async def _store_checked(url: str) -> str:
    """Open the store and check it (SQLite: every page); where it is, for the doctor's line."""
    db = await Database.open(url)
    if is_postgresql_url(url):
        try:
            await db.fetchone("SELECT 1")
        finally:
            await db.close()
        return redact_url(url)
    path = sqlite_path(url)
    try:
        # Every page, not only the ones a start reads: damage found now, not mid-call.
        checked = [row[0] for row in await db.fetchall("PRAGMA quick_check")]
    except sqlite3.Error as exc:
        checked = [str(exc)]
    finally:
        await db.close()
    if checked != ["ok"]:
        raise StoreError(damaged_store(path, " ".join(" ".join(checked[:3]).split())))
    return str(path)


def _asterisk_findings(config: Config) -> tuple[list[str], int]:
    """Asterisk's own config checked by the doctor: printable lines and the error count."""
    etc = Path(config.asterisk.config_dir)
    if not etc.is_dir():
        return [f"asterisk: config folder {etc} not found (set [asterisk] config_dir); skipped"], 0
    findings = check_asterisk_config(
        etc,
        username=config.ami.username,
        click_to_call=config.asterisk.click_to_call,
        outbound_context=config.calls.outbound_context,
    )
    lines = []
    for finding in findings:
        where = f" ({finding.file}:{finding.line})" if finding.file else ""
        lines.append(f"asterisk: {finding.level.upper()} {finding.code}: {finding.message}{where}")
    return lines, sum(f.level == "error" for f in findings)


_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {
    ("serve", None): _serve,
    **STORE_COMMANDS,
    **REPORT_COMMANDS,
    **USERS_COMMANDS,
    **WEBHOOKS_COMMANDS,
    **DEMO_COMMANDS,
    **CONVERSIONS_COMMANDS,
    ("doctor", None): _doctor,
}
