"""What the rest of the gateway needs from AMI: the `AmiLink` protocol, its handlers and errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from gateway.telephony.ami_protocol import AmiMessage

__all__ = ["AmiActionError", "AmiDisconnected", "AmiLink", "EventHandler", "ResyncHandler"]

EventHandler = Callable[[AmiMessage], None]


class ResyncHandler(Protocol):
    """Told when a resync begins (right after login) and given the live channels at its end."""

    def resync_started(self) -> None: ...

    def resynced(self, channels: Sequence[AmiMessage]) -> None: ...


class AmiDisconnected(ConnectionError):
    """The action could not complete: there is no logged-in AMI connection (now)."""


class AmiActionError(RuntimeError):
    """Asterisk answered `Response: Error`; the message says why."""


class AmiLink(Protocol):
    """What the rest of the gateway needs from AMI."""

    @property
    def connected(self) -> bool: ...

    def subscribe(self, handler: EventHandler) -> Callable[[], None]: ...

    def on_resync(self, handler: ResyncHandler) -> Callable[[], None]: ...

    async def action(
        self, name: str, fields: Mapping[str, object] | None = None, timeout_s: float | None = None
    ) -> AmiMessage: ...

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str = "",
        variables: Mapping[str, str] | None = None,
        timeout_ms: int = 30000,
    ) -> AmiMessage: ...
