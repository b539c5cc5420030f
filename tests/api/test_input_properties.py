"""Property-based: no body, header or query parameter gets a 5xx or loses another request."""

from __future__ import annotations

import asyncio
import json
from itertools import count
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.appkeys import DB, DESK
from tests.api.test_poisoned_batch import raw_http, session_post, unlimited

# One app serves all the examples of a test: the fixture is made once on purpose.
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Every character, lone surrogates included.
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=20)
URL_LIKE = st.lists(
    st.sampled_from(
        ["https://", "http://", "[", "]", "::1", "\u2100", "@", ":", "?", "#", "utm_source=", "/"]
    )
    | ANY_TEXT,
    max_size=6,
).map("".join)
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | ANY_TEXT
    | URL_LIKE
)
JSON_VALUE = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3)
)
SESSION_BODY = st.fixed_dictionaries(
    {},
    optional={
        "site": st.just("demo") | JSON_VALUE,
        "url": st.just("https://www.demo-plumbing.example/") | URL_LIKE | JSON_VALUE,
        "referrer": URL_LIKE | JSON_VALUE,
        "visitor_id": ANY_TEXT | JSON_VALUE,
    },
).flatmap(lambda known: st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=3).map(known.__or__))
RAW_BODY = (
    SESSION_BODY.map(lambda body: json.dumps(body).encode())
    | st.binary(max_size=200)
    | ANY_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass"))
    | st.sampled_from([1, 31, 33, 500, 990, 3000]).map(lambda n: b"[" * n + b"]" * n)
    | st.sampled_from([1, 33, 990]).map(lambda n: b'{"a": ' * n + b"{}" + b"}" * n)
    | st.sampled_from([19, 20, 4300, 4301, 6000]).map(lambda n: b'{"site": ' + b"7" * n + b"}")
    | st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999"]).map(
        lambda value: b'{"site": "demo", "url": "https://x.example/", "n": ' + value + b"}"
    )
)
# Header bytes as a client may send them: anything but the bytes that end the line.
HEADER_BYTES = st.binary(max_size=40).map(
    lambda raw: raw.replace(b"\r", b"r").replace(b"\n", b"n").strip()
)


@pytest.fixture
async def open_client(make_client, tmp_path: Path):
    return await make_client(unlimited(tmp_path))


def posted(body: bytes, user_agent: bytes, content_type: bytes) -> bytes:
    return (
        b"POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + user_agent + b"\r\n"
        b"Content-Type: " + content_type + b"\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


@SETTINGS
@given(
    body=RAW_BODY,
    user_agent=HEADER_BYTES,
    content_type=st.sampled_from([b"application/json", b"text/plain", b"x/y"]),
)
async def test_no_session_body_or_user_agent_gets_a_5xx_or_loses_its_neighbour(
    open_client, body, user_agent, content_type
) -> None:
    """Any body and User-Agent is answered below 500; a good request beside it is stored."""
    host, port = open_client.server.host, open_client.server.port
    marker = next(_MARKERS)
    (status, answer), (good, _) = await asyncio.gather(
        raw_http(host, port, posted(body, user_agent, content_type)),
        raw_http(host, port, session_post(marker, b"Good agent")),
    )
    assert status < 500, answer
    assert good == 201
    row = await open_client.app[DB].lookup(
        "SELECT user_agent FROM sessions WHERE referrer = ?", (f"https://ref.example/{marker}",)
    )
    assert row is not None and row["user_agent"] == "Good agent"


_MARKERS = count()

ODD_NUMBERS = st.sampled_from(["\u0661", "1_0", " 7", "+5", "-0", "", "9" * 2000])
TIME_TEXT = st.builds(
    lambda moment, zone: moment.isoformat() + zone,
    st.datetimes(),
    st.sampled_from(["", "Z", "+00:00", "+14:00", "-14:00", "+01:00", "-23:59"]),
) | st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00", "2026-13-01"])
CALL_QUERY = st.fixed_dictionaries(
    {},
    optional={
        "since": TIME_TEXT | ANY_TEXT,
        "until": TIME_TEXT | ANY_TEXT,
        "limit": st.integers(min_value=-5, max_value=200_000).map(str) | ODD_NUMBERS,
        "offset": st.sampled_from([2**63 - 1, 2**63, 2**64]).map(str)
        | st.integers(min_value=0, max_value=2**70).map(str)
        | ODD_NUMBERS,
        "site": st.just("demo") | ANY_TEXT,
        "state": st.sampled_from(["ringing", "answered", "missed", "abandoned"]) | ANY_TEXT,
    },
)


def query_string(query: dict[str, str]) -> bytes:
    """The query as a client may send it: lone surrogates as the bytes that are not UTF-8."""
    return "&".join(
        f"{key}={quote(value, errors='surrogatepass')}" for key, value in query.items()
    ).encode()


@SETTINGS
@given(query=CALL_QUERY, path=st.sampled_from([b"/v1/calls", b"/v1/calls.csv"]))
async def test_no_call_query_gets_a_5xx(client, admin_key, query, path) -> None:
    """Any since, until, limit, offset, site and state on the calls API is answered below 500."""
    status, answer = await raw_http(
        client.server.host,
        client.server.port,
        b"GET " + path + b"?" + query_string(query) + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + admin_key.encode() + b"\r\nConnection: close\r\n\r\n",
    )
    assert status < 500, answer
    if status >= 400:
        assert json.loads(answer)["error"]["code"] == "invalid_parameter"


@SETTINGS
@given(
    query=st.dictionaries(
        st.sampled_from(["url", "referrer", "visitor_id", "__amp_source_origin"]),
        URL_LIKE | ANY_TEXT,
        max_size=4,
    ),
    user_agent=HEADER_BYTES,
)
async def test_no_amp_query_or_user_agent_gets_a_5xx(open_client, query, user_agent) -> None:
    """Any url, referrer and visitor_id on the AMP endpoint is answered below 500, stored valid."""
    status, answer = await raw_http(
        open_client.server.host,
        open_client.server.port,
        b"GET /v1/amp/demo?" + query_string(query) + b" HTTP/1.1\r\nHost: x\r\n"
        b"User-Agent: " + user_agent + b"\r\nConnection: close\r\n\r\n",
    )
    assert status < 500, answer
    if status == 200:
        row = await open_client.app[DB].lookup(
            "SELECT url, landing_page, referrer, user_agent, visitor_id FROM sessions"
            " ORDER BY rowid DESC LIMIT 1"
        )
        assert row is not None
        for text in row:
            text.encode("utf-8")  # stored as valid text


SETTING_INT = st.sampled_from([0, 1, 60, 10**9, 10**12, 10**15, 2**63 - 1, 2**64]) | st.integers(
    min_value=0
)
DURATIONS = (
    "heartbeat_seconds",
    "grace_seconds",
    "cooldown_seconds",
    "attribution_window_seconds",
    "probation_seconds",
    "amp_lease_seconds",
)
# Well-typed sites with extreme values (most random bodies stop at the first type error).
POOL_BODY = st.fixed_dictionaries(
    {"target": st.just("+14155550160"), "numbers": st.just(["+14155550161", "+14155550162"])},
    optional={name: SETTING_INT for name in DURATIONS}
    | {"overflow": st.just("+14155550163") | ANY_TEXT, "require_params": st.lists(ANY_TEXT)},
)
SITE_BODY = st.fixed_dictionaries(
    {"key": st.just("shop"), "pools": st.lists(POOL_BODY, min_size=1, max_size=1)},
    optional={
        "name": ANY_TEXT,
        "allowed_origins": st.lists(URL_LIKE, max_size=2),
        "bot_user_agents": st.lists(ANY_TEXT, max_size=2),
        "limits": st.dictionaries(
            st.sampled_from(["client_per_minute", "client_burst", "site_per_minute"]),
            SETTING_INT,
        ),
    },
)


@SETTINGS
@given(body=SITE_BODY | JSON_VALUE)
async def test_no_site_body_gets_a_5xx_or_breaks_the_next_reload(client, admin_key, body) -> None:
    """Any site body is answered below 500, and what it stored still loads and serves."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    resp = await client.post("/v1/sites", data=json.dumps(body), headers=auth)
    assert resp.status < 500, await resp.text()
    await client.app[DESK].book.reload()  # raises if a stored site cannot be built
    if resp.status == 201:
        listed = await client.get("/v1/sites", headers=auth)
        assert listed.status == 200
        opened = await client.post(
            "/v1/sessions",
            json={"site": (await resp.json())["key"], "url": "https://x.example/"},
            headers={"User-Agent": "Mozilla/5.0"},
        )
        assert opened.status < 500, await opened.text()


NUMBER_BODY = st.fixed_dictionaries(
    {},
    optional={
        "site": st.just("demo") | JSON_VALUE,
        "target": st.just("+14155550100") | ANY_TEXT | JSON_VALUE,
        "number": st.sampled_from(["+14155550131", "415-555-0132", "+1" + "9" * 40]) | ANY_TEXT,
    },
)


@SETTINGS
@given(body=NUMBER_BODY | JSON_VALUE, number=ANY_TEXT)
async def test_no_number_body_or_path_gets_a_5xx(client, admin_key, body, number) -> None:
    """Any body for POST /v1/numbers and any number in DELETE /v1/numbers/{n} is below 500."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    added = await client.post("/v1/numbers", data=json.dumps(body), headers=auth)
    assert added.status < 500, await added.text()
    path = quote(number.encode("utf-8", "surrogatepass"), safe="")
    removed = await client.delete(f"/v1/numbers/{path}", headers=auth)
    assert removed.status < 500, await removed.text()
