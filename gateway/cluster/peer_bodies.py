"""The bodies of the peer link's requests and replies (frames: gateway/cluster/peer_frames.py),
each checked field by field as it is read: a peer is authenticated, not trusted.

Sessions are the lease channel's (gateway/http/lease_channel.py) request items and reply
payload, with status 0 for a session of a site the node does not hold. Heartbeats, routes and
AMP numbers are small JSON lists or objects.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from gateway.cluster.peer_frames import BadFrame, check_number, check_text, json_body
from gateway.http.lease_channel import read_replies, reply_frame
from gateway.http.session_request import MAX_UA, MAX_URL, SessionReply, SessionRequest
from gateway.leasing.elsewhere import AmpAnswer, AmpAsk, HeartbeatAnswer
from gateway.telephony.agi import AgiRequest, RouteDecision
from numberpool.visit import url_problem

__all__ = [
    "ANSWER_WITHIN",
    "MAX_ANSWER_WITHIN_MS",
    "MAX_SESSIONS",
    "decode_amp",
    "decode_amp_answer",
    "decode_heartbeat",
    "decode_heartbeat_answer",
    "decode_route",
    "decode_route_answer",
    "decode_session_replies",
    "decode_sessions",
    "encode_amp",
    "encode_amp_answer",
    "encode_heartbeat",
    "encode_heartbeat_answer",
    "encode_route",
    "encode_route_answer",
    "encode_session_replies",
    "encode_sessions",
    "session_problem",
]

MAX_SESSIONS = 256  # session requests in one frame
_MAX_SESSION_ID = 64
_MAX_TEXT = 256  # caller id, names, channel, ids of a route
_MAX_ROUTE = 512  # a dial string, label or whisper in a route's answer


# -- sessions -----------------------------------------------------------------------------


def encode_sessions(requests: list[SessionRequest]) -> bytes:
    """A sessions request body: the lease channel's items, the client as resolved by the asker."""
    items = [
        [r.site, r.url, r.referrer, r.visitor_id, r.user_agent, r.origin, r.client]
        for r in requests
    ]
    return json.dumps(items, separators=(",", ":")).encode()


def decode_sessions(body: bytes) -> list[SessionRequest]:
    """The session requests of a peer's frame, each checked as POST /v1/sessions checks it."""
    items = json_body(body)
    if not isinstance(items, list) or not 0 < len(items) <= MAX_SESSIONS:
        raise BadFrame(f"sessions must be a list of 1-{MAX_SESSIONS} requests")
    return [_session(item) for item in items]


def _session(item: Any) -> SessionRequest:
    if not isinstance(item, list) or len(item) != 7:
        raise BadFrame("a session request is a list of 7 values")
    site, url, referrer, visitor_id, user_agent, origin, client = item
    check_text(site, 64, "site")
    check_text(url, MAX_URL, "url")
    check_text(referrer, MAX_URL, "referrer")
    check_text(visitor_id, 64, "visitor_id")
    check_text(user_agent, MAX_UA, "user_agent")
    if origin is not None:
        check_text(origin, MAX_URL, "origin")
    check_text(client, 64, "client")
    req = SessionRequest(site, url, referrer, visitor_id, user_agent, origin, client)
    problem = session_problem(req)
    if problem is not None:
        raise BadFrame(problem)
    return req


def session_problem(req: SessionRequest) -> str | None:
    """Why a session request would be refused by its owner (None: it would not), checked by
    the asker first: one bad request must not get its whole frame refused."""
    if len(req.site) > 64 or len(req.visitor_id) > 64 or len(req.client) > 64:
        return "a session's site, visitor_id or client is too long"
    if len(req.user_agent) > MAX_UA or (req.origin is not None and len(req.origin) > MAX_URL):
        return "a session's user_agent or origin is too long"
    if len(req.url) > MAX_URL or len(req.referrer) > MAX_URL:
        return "a session's url or referrer is too long"
    if not req.url.startswith(("http://", "https://")) or url_problem(req.url) is not None:
        return "a session's url is not a valid http(s) URL"
    if url_problem(req.referrer) is not None:
        return "a session's referrer is not a valid URL"
    return None


def encode_session_replies(replies: list[SessionReply]) -> bytes:
    """The owner's answers, in order (status 0: a site it does not hold)."""
    return reply_frame(replies)[4:]


def decode_session_replies(body: bytes, count: int) -> list[SessionReply]:
    """The owner's answers to `count` requests; BadFrame when they do not add up."""
    try:
        replies = read_replies(body)
    except (ValueError, TypeError, KeyError, struct.error, UnicodeDecodeError) as exc:
        raise BadFrame(f"sessions reply: {exc}") from None
    if len(replies) != count:
        raise BadFrame("sessions reply has the wrong number of answers")
    for reply in replies:
        if not (reply.status == 0 or 200 <= reply.status < 600) or not isinstance(
            reply.headers, dict
        ):
            raise BadFrame("sessions reply with a bad status or headers")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in reply.headers.items()):
            raise BadFrame("sessions reply headers must be text")
        if any("\r" in k + v or "\n" in k + v for k, v in reply.headers.items()):
            raise BadFrame("sessions reply headers hold a line break")
    return replies


# -- heartbeats ---------------------------------------------------------------------------


def encode_heartbeat(session_id: str, origin: str | None) -> bytes:
    return json.dumps([session_id, origin], separators=(",", ":")).encode()


def decode_heartbeat(body: bytes) -> tuple[str, str | None]:
    item = json_body(body)
    if not isinstance(item, list) or len(item) != 2:
        raise BadFrame("a heartbeat is [session_id, origin]")
    session_id, origin = item
    check_text(session_id, _MAX_SESSION_ID, "session_id")
    if origin is not None:
        check_text(origin, MAX_URL, "origin")
    return session_id, origin


def encode_heartbeat_answer(answer: HeartbeatAnswer) -> bytes:
    fields = [
        answer.status,
        answer.code,
        answer.message,
        answer.expires_at,
        answer.expires_in,
        answer.origin_allowed,
    ]
    return json.dumps(fields, separators=(",", ":")).encode()


def decode_heartbeat_answer(body: bytes) -> HeartbeatAnswer:
    item = json_body(body)
    if not isinstance(item, list) or len(item) != 6:
        raise BadFrame("a heartbeat answer is a list of 6 values")
    status, code, message, expires_at, expires_in, allowed = item
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status < 600:
        raise BadFrame("a heartbeat answer's status is not an HTTP status")
    check_text(code, 64, "code")
    check_text(message, 400, "message")
    check_text(expires_at, 40, "expires_at")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        raise BadFrame("a heartbeat answer's expires_in is not a number")
    if not math.isfinite(expires_in) or expires_in < 0:
        raise BadFrame("a heartbeat answer's expires_in is out of range")
    if not isinstance(allowed, bool):
        raise BadFrame("a heartbeat answer's origin_allowed is not true or false")
    return HeartbeatAnswer(status, code, message, expires_at, float(expires_in), allowed)


# -- routes -------------------------------------------------------------------------------

_ROUTE_TEXT = ("dialed", "caller", "caller_name", "linkedid", "uniqueid", "channel")
_ROUTE_FIELDS = frozenset({*_ROUTE_TEXT, "lookup_began", "lookup_timeout_s"})
# How long the asker still waits for the answer (its AGI deadline's remainder), in whole
# milliseconds. Optional: a gateway of an older version neither sends nor accepts it.
ANSWER_WITHIN = "answer_within_ms"
MAX_ANSWER_WITHIN_MS = 600_000  # a caller never waits 10 minutes for a route
_ROUTE_FIELDS_NOW = _ROUTE_FIELDS | {ANSWER_WITHIN}


def encode_route(request: AgiRequest, answer_within_ms: int | None = None) -> bytes:
    """What the owner's router needs of a FastAGI request (not its whole env block), and how
    long the asker still waits for the answer (None: not said, as older gateways do)."""
    item: dict[str, Any] = {name: getattr(request, name)[:_MAX_TEXT] for name in _ROUTE_TEXT}
    item["lookup_began"] = request.lookup_began
    item["lookup_timeout_s"] = request.lookup_timeout_s
    if answer_within_ms is not None:
        item[ANSWER_WITHIN] = min(max(answer_within_ms, 0), MAX_ANSWER_WITHIN_MS)
    return json.dumps(item, separators=(",", ":")).encode()


def decode_route(body: bytes) -> tuple[AgiRequest, float | None]:
    """A peer's route request and how long it still waits for the answer, in seconds (None:
    an older gateway's request, which does not say)."""
    item = json_body(body)
    if not isinstance(item, dict) or not _ROUTE_FIELDS <= item.keys() <= _ROUTE_FIELDS_NOW:
        raise BadFrame("a route request has the wrong fields")
    for name in _ROUTE_TEXT:
        check_text(item[name], _MAX_TEXT, name)
    began = check_number(item["lookup_began"], 1e9, 1e11, "lookup_began")
    timeout = check_number(item["lookup_timeout_s"], 0.1, 600.0, "lookup_timeout_s")
    within = item.get(ANSWER_WITHIN)
    if ANSWER_WITHIN in item and (
        not isinstance(within, int)
        or isinstance(within, bool)
        or not 0 <= within <= MAX_ANSWER_WITHIN_MS
    ):
        raise BadFrame(f"{ANSWER_WITHIN} must be whole milliseconds, 0-{MAX_ANSWER_WITHIN_MS}")
    request = AgiRequest(
        dialed=item["dialed"],
        caller=item["caller"],
        caller_name=item["caller_name"],
        linkedid=item["linkedid"],
        uniqueid=item["uniqueid"],
        channel=item["channel"],
        env={},
        lookup_began=began,
        lookup_timeout_s=timeout,
    )
    return request, None if within is None else within / 1000


def encode_route_answer(decision: RouteDecision | None) -> bytes:
    if decision is None:
        return b"null"
    fields = [decision.route, decision.call_id, decision.source, decision.whisper]
    return json.dumps(fields, separators=(",", ":")).encode()


def decode_route_answer(body: bytes) -> RouteDecision | None:
    item = json_body(body)
    if item is None:
        return None
    if not isinstance(item, list) or len(item) != 4:
        raise BadFrame("a route answer is null or a list of 4 texts")
    for value in item:
        check_text(value, _MAX_ROUTE, "route answer")
    route, call_id, source, whisper = item
    if not route or not call_id:
        raise BadFrame("a route answer without a route or call id")
    return RouteDecision(route, call_id, source, whisper)


# -- AMP numbers --------------------------------------------------------------------------


def encode_amp(ask: AmpAsk) -> bytes:
    fields = [ask.site, ask.url, ask.referrer, ask.user_agent, ask.visitor_id, ask.client]
    return json.dumps(fields, separators=(",", ":")).encode()


def decode_amp(body: bytes) -> AmpAsk:
    item = json_body(body)
    if not isinstance(item, list) or len(item) != 6:
        raise BadFrame("an AMP request is a list of 6 texts")
    limits = (64, MAX_URL, MAX_URL, MAX_UA, 64, 64)
    for value, limit in zip(item, limits, strict=True):
        check_text(value, limit, "AMP request field")
    if url_problem(item[1]) is not None or url_problem(item[2]) is not None:
        raise BadFrame("an AMP request's url or referrer is not a valid URL")
    return AmpAsk(*item)


def encode_amp_answer(answer: AmpAnswer) -> bytes:
    fields = [answer.status, answer.code, answer.message, answer.number, answer.retry_after]
    return json.dumps(fields, separators=(",", ":")).encode()


def decode_amp_answer(body: bytes) -> AmpAnswer:
    item = json_body(body)
    if not isinstance(item, list) or len(item) != 5:
        raise BadFrame("an AMP answer is a list of 5 values")
    status, code, message, number, retry_after = item
    for value in (status, retry_after):
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadFrame("an AMP answer's status and retry_after are integers")
    if not 200 <= status < 600 or not 0 <= retry_after <= 86400:
        raise BadFrame("an AMP answer's status or retry_after is out of range")
    check_text(code, 64, "code")
    check_text(message, 400, "message")
    check_text(number, 32, "number")
    return AmpAnswer(status, code, message, number, retry_after)
