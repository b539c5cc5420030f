"""Report routes: summaries, breakdowns and their CSV/XLSX downloads, call marks, campaign costs."""

from __future__ import annotations

from aiohttp import web

__all__ = ["add_report_routes"]


def add_report_routes(app: web.Application) -> None:
    """Register this module's routes on `app`."""
