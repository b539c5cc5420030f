"""The `ctgw users` commands: staff accounts."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.cli_store import CliError
from gateway.config import Config
from gateway.store.agents import check_endpoints, set_endpoints
from gateway.store.database import Database
from gateway.store.sites import seed_sites
from gateway.store.staff import ROLES, StaffUser, UserInputError, create_user, list_users

__all__ = ["USERS_COMMANDS", "users_parsers"]


def users_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `sub` (argparse subparsers)."""
    users = sub.add_parser("users", help="staff accounts for the dashboard").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser(
        "create", parents=[common], help="create a staff user (a random password is printed once)"
    )
    create.add_argument("email")
    create.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
    create.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="KEY",
        help="a site the user sees (repeat; an admin with none sees every site)",
    )
    create.add_argument("--name", default="", help="the name shown in the dashboard")
    create.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="TECH/RESOURCE",
        help="a SIP endpoint that rings for this agent, like PJSIP/agent1 (repeat)",
    )
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin instead of making one",
    )
    users.add_parser("list", parents=[common], help="list staff users (never a password)")


async def _with_db(config: Config, work: Callable[[Database], Coroutine[Any, Any, int]]) -> int:
    db = await Database.open(config.store.url)
    try:
        await seed_sites(db, config, datetime.now(UTC))  # the config's sites are known keys
        return await work(db)
    finally:
        await db.close()


async def _read_password() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.removesuffix("\n").removesuffix("\r")


async def _users_create(config: Config, args: argparse.Namespace) -> int:
    made = not args.password_stdin
    password = secrets.token_urlsafe(18) if made else await _read_password()

    async def work(db: Database) -> int:
        try:
            phones = check_endpoints(args.endpoint, args.role)
            user = await create_user(
                db,
                email=args.email,
                name=args.name,
                role=args.role,
                sites=args.site,
                password=password,
                at=datetime.now(UTC),
            )
        except UserInputError as exc:
            raise CliError(str(exc)) from None
        await set_endpoints(db, user.user_id, phones)
        if made:
            print(password)
            print(f"(password of {user.email}; it is shown only this once)", file=sys.stderr)
        else:
            print(f"user {user.email} created ({user.role})")
        return 0

    return await _with_db(config, work)


def _sites(user: StaffUser) -> str:
    if user.role == "admin" and not user.sites:
        return "*"
    return ",".join(sorted(user.sites))


async def _users_list(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        people = await list_users(db)
        if not people:
            print(
                "no staff users (create one with: ctgw users create EMAIL --role admin)",
                file=sys.stderr,
            )
        for user in people:
            print(f"{user.email}\t{user.role}\t{_sites(user)}\t{user.name}")
        return 0

    return await _with_db(config, work)


USERS_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {
    ("users", "create"): _users_create,
    ("users", "list"): _users_list,
}
