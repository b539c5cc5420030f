"""The `ctgw demo` commands: the demo site's seeded history."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from gateway.config import Config

__all__ = ["DEMO_COMMANDS", "demo_parsers"]


def demo_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `sub` (argparse subparsers)."""


DEMO_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {}
