"""systemd's notify protocol for `Type=notify` units: ready, stopping, and watchdog pings.

Datagrams to the socket named by $NOTIFY_SOCKET (sd_notify(3)); nothing at all when it is not
set. The watchdog pings come from the event loop itself, so a loop that stops turning (a
blocking call, a SIGSTOP) stops them and systemd restarts the gateway after `WatchdogSec=`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import structlog

__all__ = ["SystemdNotifier"]

log = structlog.get_logger()


class SystemdNotifier:
    """One unit's notify socket; every method is a no-op when the process was not started by
    systemd with `Type=notify` (or `NotifyAccess=`)."""

    def __init__(self, address: str | None, watchdog_seconds: float | None) -> None:
        # An address starting with '@' is in the abstract namespace.
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self._socket: socket.socket | None = None
        self._watchdog_seconds = watchdog_seconds
        self._watchdog: asyncio.Task[None] | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """The notifier systemd asked for in the environment ($NOTIFY_SOCKET, $WATCHDOG_USEC,
        $WATCHDOG_PID)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        watchdog: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # The watchdog is ours unless systemd named another process for it.
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1_000_000
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """The gateway is listening: send READY=1 and start the watchdog pings, if asked for."""
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))
        if self._address and self._watchdog_seconds and self._watchdog is None:
            self._watchdog = asyncio.create_task(self._ping(), name="systemd-watchdog")

    def stopping(self) -> None:
        """The gateway is shutting down: send STOPPING=1 and stop the watchdog pings."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.send("STOPPING=1")
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def send(self, message: str) -> None:
        """Send one notify datagram; a failure is logged once and never stops the gateway."""
        if self._address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
                self._socket.setblocking(False)
            self._socket.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("systemd_notify_failed", socket=self._address, error=str(exc))

    async def _ping(self) -> None:
        # Half the interval systemd gave, as sd_watchdog_enabled(3) advises.
        interval = (self._watchdog_seconds or 0) / 2
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(interval)
