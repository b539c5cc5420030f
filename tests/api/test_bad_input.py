"""Every bad request gets a 4xx JSON error naming the problem, never a traceback."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from tests.api.conftest import BROWSER, open_session


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"site": "demo", "url": ', 400, "malformed_json"),
        (b"[1, 2]", 400, "malformed_json"),
        (b"", 400, "empty_body"),
        (b'{"site": "demo", "url": "https://x.example/\xff"}', 400, "invalid_encoding"),
        (b'{"url": "https://x.example/"}', 400, "missing_field"),
        (b'{"site": 7, "url": "https://x.example/"}', 400, "invalid_field"),
        (b'{"site": "nope", "url": "https://x.example/"}', 404, "unknown_site"),
        (b'{"site": "demo", "url": "javascript:alert(1)"}', 400, "invalid_field"),
        (b'{"site": "demo", "url": "https://x.example/\\ud800"}', 400, "invalid_encoding"),
        (b'{"site": "demo", "url": "https://x.example/\\u0000"}', 400, "invalid_field"),
        (b'{"site": "' + b"d" * 65 + b'", "url": "https://x.example/"}', 400, "field_too_long"),
    ],
)
async def test_bad_session_requests_get_json_errors(client, body, status, code) -> None:
    """Malformed, mistyped, unknown or badly encoded input is named in a JSON error."""
    with capture_logs() as logs:
        resp = await client.post(
            "/v1/sessions",
            data=body,
            headers={**BROWSER, "Content-Type": "application/json"},
        )
    assert resp.status == status
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"]
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


async def test_overlong_url_is_refused(client) -> None:
    """A URL longer than 2048 characters is a 400 naming the field."""
    resp = await client.post(
        "/v1/sessions",
        json={"site": "demo", "url": "https://x.example/?" + "a" * 3000},
        headers=BROWSER,
    )
    assert resp.status == 400
    assert "'url'" in (await resp.json())["error"]["message"]


async def test_oversized_body_is_413_json(client) -> None:
    """A body over 16 KB is refused with 413 and a JSON error."""
    resp = await client.post(
        "/v1/sessions",
        data=b'{"site": "demo", "pad": "' + b"x" * 17000 + b'"}',
        headers={**BROWSER, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    error = (await resp.json())["error"]
    assert error["code"] == "body_too_large" and "16384" in error["message"]


async def test_unknown_path_and_method_are_json(client) -> None:
    """Unknown paths and wrong methods answer JSON errors too."""
    missing = await client.get("/v1/nothing-here")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    wrong = await client.get("/v1/sessions")
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"


async def test_admin_requires_a_valid_key(client, admin_key) -> None:
    """Admin endpoints answer 401 without a key or with a wrong one, 200 with a valid one."""
    assert (await client.get("/v1/sites")).status == 401
    wrong = await client.get("/v1/sites", headers={"Authorization": "Bearer ctgw_wrong"})
    assert wrong.status == 401
    assert (await wrong.json())["error"]["code"] == "unauthorized"
    ok = await client.get("/v1/sites", headers={"Authorization": f"Bearer {admin_key}"})
    assert ok.status == 200
    assert [s["key"] for s in (await ok.json())["sites"]] == ["demo"]


async def test_admin_number_add_validates_numbers(client, admin_key) -> None:
    """Adding an invalid or duplicate number is a 4xx naming it; a good one joins the pool."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    bad = await client.post(
        "/v1/numbers", json={"site": "demo", "target": "+14155550100", "number": "12"}, headers=auth
    )
    assert bad.status == 400 and "'number'" in (await bad.json())["error"]["message"]
    dup = await client.post(
        "/v1/numbers",
        json={"site": "demo", "target": "+14155550100", "number": "+14155550101"},
        headers=auth,
    )
    assert dup.status == 409
    ok = await client.post(
        "/v1/numbers",
        json={"site": "demo", "target": "(415) 555-0100", "number": "415-555-0131"},
        headers=auth,
    )
    assert ok.status == 201 and (await ok.json())["number"] == "+14155550131"
    listing = await (await client.get("/v1/numbers", headers=auth)).json()
    assert "+14155550131" in [n["number"] for n in listing["numbers"]]


async def test_admin_site_create_reports_config_errors(client, admin_key) -> None:
    """A site posted with an unknown key is refused naming the key; a valid one is served."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    bad = await client.post("/v1/sites", json={"key": "shop", "colour": "red"}, headers=auth)
    assert bad.status == 400 and "colour" in (await bad.json())["error"]["message"]
    site = {
        "key": "shop",
        "allowed_origins": ["https://shop.example"],
        "pools": [{"target": "+14155550160", "numbers": ["+14155550161"]}],
    }
    assert (await client.post("/v1/sites", json=site, headers=auth)).status == 201
    resp = await client.post(
        "/v1/sessions", json={"site": "shop", "url": "https://shop.example/"}, headers=BROWSER
    )
    assert (await resp.json())["numbers"][0]["number"] == "+14155550161"


async def test_random_input_never_gets_a_server_error(client, admin_key) -> None:
    """Hundreds of random bodies, paths and headers get 2xx/4xx answers, never a 5xx."""
    import json
    import random

    rng = random.Random(42)
    values = [
        None,
        True,
        0,
        -1,
        1e308,
        "",
        "demo",
        "x" * 5000,
        "\ud800",
        "\x00",
        [],
        {},
        "https://x.example/?utm_source=" + "%" * 50,
        "tel:+1",
        "+14155550101",
    ]
    keys = ["site", "url", "referrer", "visitor_id", "number", "target", "key", "pools"]
    statuses = []
    for _ in range(300):
        body = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 5))}
        raw = json.dumps(body).encode() if rng.random() < 0.8 else rng.randbytes(rng.randint(0, 64))
        path = rng.choice(
            [
                "/v1/sessions",
                "/v1/sites",
                "/v1/numbers",
                f"/v1/sessions/{rng.choice(['x', '..', '%00', 'a' * 100])}/heartbeat",
            ]
        )
        headers = {**BROWSER, "Content-Type": rng.choice(["application/json", "text/plain", "x/y"])}
        if rng.random() < 0.5:
            headers["Authorization"] = f"Bearer {admin_key}"
        if rng.random() < 0.3:
            headers["Origin"] = rng.choice(["null", "https://evil.example", ""])
        resp = await client.post(path, data=raw, headers=headers)
        statuses.append(resp.status)
        if resp.status >= 400:
            assert "error" in await resp.json()
    assert max(statuses) < 500, sorted(set(statuses))
    assert len({s for s in statuses if 400 <= s < 500}) >= 3  # many kinds of refusal seen


_SESSION_START = b'{"site": "demo", "url": "https://www.demo-plumbing.example/", "x": '


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (_SESSION_START + b"[" * 990 + b"]" * 990 + b"}", "malformed_json", "nested"),
        (b"[" * 990 + b"]" * 990, "malformed_json", "nested"),
        (b'{"a": ' * 990 + b"1" + b"}" * 990, "malformed_json", "nested"),
        (_SESSION_START + b"1" * 20 + b"}", "malformed_json", "digits"),
        (_SESSION_START + b"1" * 4301 + b"}", "malformed_json", "digits"),
        (_SESSION_START + b"-" + b"9" * 5000 + b"}", "malformed_json", "digits"),
        (_SESSION_START + b"NaN}", "malformed_json", "NaN"),
        (_SESSION_START + b"-Infinity}", "malformed_json", "Infinity"),
        (_SESSION_START + b'"\\udcff"}', "invalid_encoding", "'x'"),
        (b'{"site": "demo", "url": "https://x.example/", "\\ud800": 1}', "invalid_encoding", "key"),
        (b'{"site": "demo", "url": "http://[::1/"}', "invalid_field", "'url'"),
        (b'{"site": "demo", "url": "http://a\\u2100/"}', "invalid_field", "'url'"),
        (
            b'{"site": "demo", "url": "https://x.example/", "referrer": "http://[bad"}',
            "invalid_field",
            "'referrer'",
        ),
        (
            b'{"site": "demo", "url": "https://x.example/", "referrer": "http://a\xe2\x84\x80/"}',
            "invalid_field",
            "'referrer'",
        ),
    ],
    ids=[
        "array-990-deep-in-object",
        "array-990-deep",
        "object-990-deep",
        "int-20-digits",
        "int-4301-digits",
        "negative-int-5001-digits",
        "nan",
        "minus-infinity",
        "lone-surrogate-in-unread-field",
        "lone-surrogate-in-key",
        "url-broken-ipv6",
        "url-nfkc-netloc",
        "referrer-broken-ipv6",
        "referrer-nfkc-netloc",
    ],
)
async def test_hostile_session_bodies_get_a_4xx_naming_the_problem(client, body, code, named):
    """Deep nesting, huge numbers, NaN, lone surrogates and unreadable URLs are named 400s."""
    with capture_logs() as logs:
        resp = await client.post(
            "/v1/sessions", data=body, headers={**BROWSER, "Content-Type": "application/json"}
        )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == code and named in error["message"]
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


@pytest.mark.parametrize("path", ["/v1/calls", "/v1/calls.csv"])
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("offset=9223372036854775808", "'offset'"),
        ("offset=" + "9" * 5000, "'offset'"),
        ("limit=%D9%A1", "'limit'"),
        ("limit=1_0", "'limit'"),
        ("since=9999-12-31T23:59:59-14:00", "'since'"),
        ("until=0001-01-01T00:00:00%2B01:00", "'until'"),
        ("since=" + "2" * 5000, "'since'"),
    ],
)
async def test_bad_call_query_parameters_get_a_4xx_naming_them(
    client, admin_key, path, query, named
):
    """Out-of-range offsets, non-ASCII digits and times beyond the calendar are named 400s."""
    resp = await client.get(f"{path}?{query}", headers={"Authorization": f"Bearer {admin_key}"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_parameter" and named in error["message"]


@pytest.mark.parametrize("setting", ["heartbeat_seconds", "cooldown_seconds", "grace_seconds"])
async def test_a_site_setting_past_the_calendar_is_refused_and_stores_nothing(
    client, admin_key, setting
) -> None:
    """A pool duration too large for lease times is a 400 naming it; the sites still load."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    site = {
        "key": "shop",
        "pools": [{"target": "+14155550160", "numbers": ["+14155550161"], setting: 10**15}],
    }
    resp = await client.post("/v1/sites", json=site, headers=auth)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_site" and f"'pools[0].{setting}'" in error["message"]
    assert (await client.get("/v1/sites", headers=auth)).status == 200
    del site["pools"][0][setting]
    assert (await client.post("/v1/sites", json=site, headers=auth)).status == 201


async def test_a_visitor_id_with_a_trailing_line_break_is_replaced(client) -> None:
    """A visitor id that is not exactly the id alphabet (a trailing newline slipped past a
    `$` anchor) is not kept: the session gets a fresh visitor id."""
    response = await open_session(client, visitor_id="abcdefgh1234\n")
    assert response.status == 201
    visitor = (await response.json())["visitor_id"]
    assert "\n" not in visitor and visitor != "abcdefgh1234"
