"""Staff pages: log in, log out, and the users an admin manages."""

from __future__ import annotations

from aiohttp import web

__all__ = ["add_staff_routes"]


def add_staff_routes(app: web.Application) -> None:
    """Register this module's routes on `app`."""
