"""Calling the gateway back about a unit (taken: load the site; lost: drain it): a callback that
fails is logged and reported, never let out into the membership loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

__all__ = ["UnitCallback", "call_for_unit", "call_while_checking"]

log = structlog.get_logger()

UnitCallback = Callable[[str], Awaitable[None]]


async def call_for_unit(callback: UnitCallback, unit: str, *, node: str) -> bool:
    """Await `callback(unit)`; False (logged) when it raised."""
    try:
        await callback(unit)
    except Exception:
        log.exception("cluster_callback_failed", node=node, unit=unit)
        return False
    return True


async def call_while_checking(
    callback: UnitCallback,
    unit: str,
    *,
    node: str,
    every_s: float,
    check: Callable[[], Awaitable[None]],
) -> bool:
    """`call_for_unit`, awaiting `check()` every `every_s` meanwhile (a slow reload must not
    hide a lost lock connection); cancelling the caller cancels the callback too."""
    task = asyncio.ensure_future(callback(unit))
    try:
        while not (await asyncio.wait({task}, timeout=every_s))[0]:
            await check()
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.cancelled():  # the callback cancelled itself: not done
        log.error("cluster_callback_cancelled", node=node, unit=unit)
        return False
    return await call_for_unit(lambda _: task, unit, node=node)
