"""The `ctgw users` commands: staff accounts."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from gateway.config import Config

__all__ = ["USERS_COMMANDS", "users_parsers"]


def users_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `sub` (argparse subparsers)."""


USERS_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {}
