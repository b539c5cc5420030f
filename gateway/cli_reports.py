"""The `ctgw report` commands over calls: summaries, breakdowns and downloads."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from gateway.config import Config

__all__ = ["REPORT_COMMANDS", "report_parsers"]


def report_parsers(report: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `report` (argparse subparsers)."""


REPORT_COMMANDS: Mapping[
    tuple[str, str | None], Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
] = {}
