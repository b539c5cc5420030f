"""The FastAGI route server: Asterisk asks `agi://HOST:PORT/route` where to send a call.

The call path, top to bottom: read the env block, ask the injected decider, set CTGW_CALL_ID,
CTGW_SOURCE, CTGW_WHISPER (only when the site has whisper on) and last CTGW_ROUTE, close.
Reading the env and deciding share one hard deadline; when it passes, or anything goes wrong,
the server says nothing more and closes, and the dialplan dials its fallback. Sending a decision
made in time may take as long as the caller's channel waits for it (the dialplan's own bound).
A caller is never held by the gateway.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog

from gateway.telephony.agi_protocol import (
    MAX_ENV_BYTES,
    AgiProtocolError,
    AnswerKind,
    env_value,
    read_answer,
    read_env,
    set_variable,
)
from gateway.telephony.whisper import whisper_text

__all__ = [
    "SCRIPT",
    "AgiRequest",
    "AgiServer",
    "RouteDecider",
    "RouteDecision",
    "answer_variables",
    "request_from_env",
    "start_agi_server",
]

# The path in `agi://host:port/route`; Asterisk sends it as agi_network_script.
SCRIPT = "route"
# How long a close may wait for the peer to take the last bytes before the socket is dropped.
_CLOSE_TIMEOUT_S = 1.0
# How long Asterisk may take to acknowledge the variables once the decision is made, when the
# dialplan does not say how long the caller's channel waits (ctgw.conf's default lookup timeout).
ANSWER_WAIT_S = 2.0


@dataclass(frozen=True)
class AgiRequest:
    """What the dialplan sent; every value is an untrusted string."""

    dialed: str
    caller: str
    caller_name: str
    linkedid: str
    uniqueid: str
    channel: str
    env: Mapping[str, str]
    # When the caller's channel began the lookup (Unix time, Asterisk's clock) and how long
    # it waits for the answer (CTGW_LOOKUP_TIMEOUT): None when the dialplan does not say.
    lookup_began: float | None = None
    lookup_timeout_s: float | None = None

    def waited(self, now: float) -> float | None:
        """Seconds the caller has waited for this answer, by the time `now`; None if unknown."""
        if self.lookup_began is None:
            return None
        return max(0.0, now - self.lookup_began)


@dataclass(frozen=True)
class RouteDecision:
    """Where the call goes (a dial string from configured destinations) and how it is labelled."""

    route: str
    call_id: str
    source: str
    # What the agent hears before being connected (see telephony/whisper.py); '' for none.
    whisper: str = ""


RouteDecider = Callable[[AgiRequest], Awaitable[RouteDecision | None]]


def request_from_env(env: Mapping[str, str]) -> AgiRequest:
    """Build the request from the env block and the arguments ctgw.conf passes.

    The lookup runs on a Local channel, so the main channel's linkedid, uniqueid and name come
    as agi_arg_1..3 and the dialed number as agi_arg_4 (agi_extension is the same number);
    agi_arg_5 and 6 are when the lookup began and how long the caller's channel waits for it.
    """
    return AgiRequest(
        dialed=env_value(env, "agi_arg_4") or env_value(env, "agi_extension"),
        caller=env_value(env, "agi_callerid"),
        caller_name=env_value(env, "agi_calleridname"),
        linkedid=env_value(env, "agi_arg_1"),
        uniqueid=env_value(env, "agi_arg_2") or env_value(env, "agi_uniqueid"),
        channel=env_value(env, "agi_arg_3") or env_value(env, "agi_channel"),
        env=dict(env),
        lookup_began=_number(env_value(env, "agi_arg_5"), 1e9, 1e11),
        lookup_timeout_s=_number(env_value(env, "agi_arg_6"), 0.1, 600),
    )


def answer_variables(decision: RouteDecision) -> list[tuple[str, str]]:
    """The variables set for a decision, CTGW_ROUTE last: if the exchange breaks off, the route
    is unset and the dialplan falls back rather than dialing with half the labels. CTGW_WHISPER
    is sent only when there is one (an unset variable reads as empty in the dialplan), so a
    site with whisper off costs no extra round trip."""
    variables = [("CTGW_CALL_ID", decision.call_id), ("CTGW_SOURCE", decision.source)]
    # Cleaned again here: whatever a decider returns, only letters, digits and spaces go out.
    whisper = whisper_text(decision.whisper)
    if whisper:
        variables.append(("CTGW_WHISPER", whisper))
    variables.append(("CTGW_ROUTE", decision.route))
    return variables


def _number(text: str, low: float, high: float) -> float | None:
    """A decimal from the dialplan within [low, high], else None (absent, garbled, absurd)."""
    if not text or len(text) > 32:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


class AgiServer:
    """A running FastAGI server; `close()` stops accepting and awaits the sessions in flight."""

    def __init__(self, decide: RouteDecider, deadline_ms: int) -> None:
        self._decide = decide
        self._deadline_s = deadline_ms / 1000
        self._sessions: set[asyncio.Task[None]] = set()
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        # How sessions ended, by outcome ("routed", "deadline_exceeded", ...), for /metrics.
        self.outcomes: collections.Counter[str] = collections.Counter()

        self.port = 0  # the port bound, known once listening (useful when started on port 0)

    async def _listen(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, host, port, limit=MAX_ENV_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop accepting, then wait for every session (each is bounded by the deadline)."""
        if self._server is not None:
            self._server.close()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        log = structlog.get_logger().bind(agi_session=next(self._numbers))
        try:
            await self._session(reader, writer, log)
        except Exception:
            # Last guard: one bad session must never take the server down.
            self.outcomes["session_failed"] += 1
            log.exception("agi_session_failed")
        finally:
            await _close(writer)
            self._sessions.discard(task)

    async def _session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        try:
            async with asyncio.timeout(self._deadline_s):
                env = await read_env(reader)
                if env.get("agi_network_script") != SCRIPT:
                    self.outcomes["unknown_script"] += 1
                    log.warning("agi_unknown_script", script=env.get("agi_network_script", ""))
                    return
                request = request_from_env(env)
                log = log.bind(linkedid=request.linkedid, dialed=request.dialed)
                try:
                    decision = await self._decide(request)
                except Exception:
                    self.outcomes["decider_failed"] += 1
                    log.exception("agi_decider_failed")
                    return
        except TimeoutError:
            self.outcomes["deadline_exceeded"] += 1
            log.warning("agi_deadline_exceeded", deadline_ms=int(self._deadline_s * 1000))
            return
        except AgiProtocolError as exc:
            self.outcomes["bad_request"] += 1
            log.warning("agi_bad_request", reason=str(exc))
            return
        except OSError as exc:
            self.outcomes["connection_lost"] += 1
            log.info("agi_connection_lost", reason=str(exc))
            return
        if decision is None:
            self.outcomes["no_route"] += 1
            log.info("agi_no_route")
            return
        log = log.bind(call_id=decision.call_id)
        await self._answer(reader, writer, decision, self._answer_wait(request), log)

    def _answer_wait(self, request: AgiRequest) -> float:
        """How long sending the decision may take: as long as the caller's channel waits for it
        (the dialplan's bound, never less than the deadline). Giving up earlier would throw away
        a route Asterisk still takes; an Asterisk short of CPU acknowledges late, not never."""
        return max(self._deadline_s, request.lookup_timeout_s or ANSWER_WAIT_S)

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decision: RouteDecision,
        wait_s: float,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        variables = answer_variables(decision)
        try:
            async with asyncio.timeout(wait_s):
                for name, value in variables:
                    writer.write(set_variable(name, value))
                    await writer.drain()
                    answer = await read_answer(reader)
                    if answer.kind is not AnswerKind.OK:
                        self.outcomes["command_refused"] += 1
                        log.info("agi_command_refused", variable=name, answer=answer.kind.value)
                        return
        except TimeoutError:
            self.outcomes["answer_timeout"] += 1
            log.warning("agi_answer_timeout", wait_ms=int(wait_s * 1000))
            return
        except AgiProtocolError as exc:
            self.outcomes["bad_answer"] += 1
            log.warning("agi_bad_answer", reason=str(exc))
            return
        except OSError as exc:
            self.outcomes["connection_lost"] += 1
            log.info("agi_connection_lost", reason=str(exc))
            return
        self.outcomes["routed"] += 1
        # The decision itself is logged once, at info, by the router ("call_routed"); failures
        # to deliver it are logged above. One line per call keeps logging off the hot path.
        log.debug("agi_routed", route=decision.route, source=decision.source)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    if writer.transport.get_write_buffer_size() == 0:
        return  # nothing left to send: the socket is closed on the loop's next pass
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()


async def start_agi_server(
    host: str, port: int, decide: RouteDecider, deadline_ms: int = 300
) -> AgiServer:
    """Listen for FastAGI on host:port and route each call with `decide` within the deadline."""
    server = AgiServer(decide, deadline_ms)
    await server._listen(host, port)
    return server
