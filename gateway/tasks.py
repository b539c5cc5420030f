"""Ending background tasks without swallowing the cancellation of the task that ends them.

`task.cancel()` then `with suppress(CancelledError): await task` looks harmless, but when the
awaiting task is itself cancelled meanwhile, that CancelledError is swallowed too: the caller
carries on (an AMI client that keeps reconnecting after close(), a shutdown that never ends).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


def _retrieve(task: asyncio.Future[Any]) -> None:
    # A task ended on purpose: its error (if any) must not be logged as "never retrieved".
    if not task.cancelled():
        task.exception()


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel `tasks` and wait until each has ended, dropping their errors; a cancellation of
    the caller itself propagates at once (the tasks then end on their own)."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.add_done_callback(_retrieve)
        task.cancel()
    running = [task for task in live if not task.done()]
    if running:
        # asyncio.wait never raises what the tasks raise, only the caller's own cancellation.
        await asyncio.wait(running)
