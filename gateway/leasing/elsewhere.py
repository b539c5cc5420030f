"""What a gateway of a cluster hands to the gateways that hold the sites it does not: the
interface its desk calls (built in gateway/cluster/forwarding.py) and the outcome of a heartbeat
answered there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.session_wire import SessionReply, SessionRequest

__all__ = ["RETRY_AFTER_S", "AmpAnswer", "AmpAsk", "HeartbeatAnswer", "SessionsElsewhere"]

# Seconds a page is told to wait when no gateway holds its site (one is taking it over).
RETRY_AFTER_S = 2


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    """A heartbeat's outcome where its site is held: renewed (200) or an API error, and whether
    the page's origin is one the site allows (for the CORS headers of the answer)."""

    status: int
    code: str = ""
    message: str = ""
    expires_at: str = ""
    expires_in: float = 0.0
    origin_allowed: bool = False


@dataclass(frozen=True, slots=True)
class AmpAsk:
    """An AMP page's request for a number, as read where it arrived (its visit's parts)."""

    site: str
    url: str
    referrer: str
    user_agent: str
    visitor_id: str
    client: str


@dataclass(frozen=True, slots=True)
class AmpAnswer:
    """An AMP number where its site is held (200), or an API error (429 with retry_after)."""

    status: int
    code: str = ""
    message: str = ""
    number: str = ""
    retry_after: int = 0


class SessionsElsewhere(Protocol):
    """The sessions and heartbeats of sites this gateway does not hold, answered by the
    gateways that hold them."""

    def here(self, site: str) -> bool:
        """Whether this gateway serves the site now (held, and its hold confirmed lately)."""
        ...

    async def sessions(self, requests: list[SessionRequest]) -> list[SessionReply]: ...

    async def heartbeat(self, session_id: str, origin: str | None) -> HeartbeatAnswer: ...

    async def amp(self, ask: AmpAsk) -> AmpAnswer: ...
