"""One client cannot drain a pool: bots get no lease, new sessions are limited per client and
per site, AMP answers only the site's origins and holds its numbers briefly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DESK
from gateway.config import ConfigError, parse_config
from tests.api.conftest import BROWSER, ORIGIN, POOL, demo_config
from tests.conftest import FakeClock

TARGET = "+14155550100"
AMP_CACHE = "https://www-demo--plumbing-example.cdn.ampproject.org"
NON_BROWSERS = [
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "Wget/1.21.4",
    "okhttp/4.12.0",
    "libwww-perl/6.72",
    "Python-urllib/3.11",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0"
    " Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
    " Safari/537.36 Playwright/1.49",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) PhantomJS/2.1.1 Safari/538.1",
]


def config(tmp_path: Path, *, limits: dict[str, int] | None = None, **http: Any) -> dict[str, Any]:
    """The API tests' demo site with the default limits (or `limits`), and a second site."""
    raw = demo_config(tmp_path)
    site = raw["sites"][0]
    if limits is None:
        del site["limits"]
    else:
        site["limits"] = limits
    raw["sites"].append(
        {
            "key": "other",
            "allowed_origins": ["https://other.example"],
            "pools": [{"target": "+14155550200", "numbers": ["+14155550201", "+14155550202"]}],
        }
    )
    raw["http"] = http
    return raw


async def post(
    client: TestClient, site: str = "demo", headers: dict[str, str] | None = None, **body: Any
):
    payload = {"site": site, "url": "https://www.demo-plumbing.example/", **body}
    return await client.post("/v1/sessions", json=payload, headers={**BROWSER, **(headers or {})})


def live(client: TestClient) -> int:
    desk = client.app[DESK]
    return desk.sites["demo"].site.pools[0].live_count(desk.clock.now())


@pytest.mark.parametrize("agent", NON_BROWSERS)
async def test_non_browser_agents_get_the_page_number_and_no_lease(make_client, agent) -> None:
    """HTTP libraries, command-line clients and automated browsers are shown the page's own
    number on sessions and AMP and hold no lease, with no bot list configured."""
    client = await make_client()
    resp = await post(client, headers={"User-Agent": agent})
    assert resp.status == 201
    body = await resp.json()
    assert body["numbers"] == [
        {"target": TARGET, "number": TARGET, "display": "(415) 555-0100", "kind": "none"}
    ]
    amp = await client.get("/v1/amp/demo", headers={"User-Agent": agent})
    assert (await amp.json())["phoneNumber"] == TARGET
    assert live(client) == 0


async def test_a_site_bot_list_extends_the_default_one(make_client, tmp_path) -> None:
    """A site's `bot_user_agents` adds to the built-in list; it does not replace it."""
    raw = demo_config(tmp_path)
    raw["sites"][0]["bot_user_agents"] = ["acmemonitor"]
    client = await make_client(raw)
    for agent in ("AcmeMonitor/2.0", "curl/8.5.0"):
        body = await (await post(client, headers={"User-Agent": agent})).json()
        assert body["numbers"][0]["kind"] == "none"
    browser = await (await post(client)).json()
    assert browser["numbers"][0]["number"] == POOL[0]


async def test_one_client_is_limited_with_a_clear_429(make_client, tmp_path, clock) -> None:
    """With the default limits one address opens 20 sessions at once, then gets 429
    `rate_limited` with Retry-After (readable by the page), counted in /metrics; one more
    session is allowed every 3 s after."""
    client = await make_client(config(tmp_path))
    statuses = [(await post(client, headers={"Origin": ORIGIN})).status for _ in range(20)]
    assert statuses == [201] * 20
    limited = await post(client, headers={"Origin": ORIGIN})
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "3"
    assert limited.headers["Access-Control-Allow-Origin"] == ORIGIN
    error = (await limited.json())["error"]
    assert error["code"] == "rate_limited"
    assert "127.0.0.1" in error["message"] and "own number" in error["message"]
    metrics = await (await client.get("/metrics")).text()
    assert 'ctgw_sessions_limited_total{limit="client",site="demo"} 1' in metrics
    clock.advance(seconds=3)
    assert (await post(client)).status == 201
    assert (await post(client)).status == 429


async def test_a_returning_visitor_is_not_counted(make_client, tmp_path) -> None:
    """A visitor whose number is still live gets it back without using up the client's
    allowance; a new visitor from the same address is limited."""
    client = await make_client(config(tmp_path, limits={"client_per_minute": 5, "client_burst": 5}))
    first = await (await post(client)).json()
    for _ in range(4):
        assert (await post(client)).status == 201
    for _ in range(3):
        again = await post(client, visitor_id=first["visitor_id"])
        assert again.status == 201
        assert (await again.json())["numbers"][0]["number"] == first["numbers"][0]["number"]
    assert (await post(client)).status == 429
    assert (await post(client, visitor_id="v" * 20)).status == 429  # unknown: a new visitor


async def test_limits_are_per_site(make_client, tmp_path) -> None:
    """A client limited on one site still gets sessions on another."""
    client = await make_client(config(tmp_path, limits={"client_per_minute": 2, "client_burst": 2}))
    assert [(await post(client)).status for _ in range(3)] == [201, 201, 429]
    other = await post(client, site="other", url="https://other.example/")
    assert other.status == 201


async def test_forwarded_clients_are_counted_apart_only_behind_a_trusted_proxy(
    make_client, tmp_path
) -> None:
    """Behind a trusted proxy each forwarded address has its own allowance (an appended
    X-Forwarded-For cannot be dressed up); from any other peer the header changes nothing."""
    limits = {"client_per_minute": 2, "client_burst": 2}
    proxied = await make_client(config(tmp_path, limits=limits, trusted_proxies=["127.0.0.1"]))

    async def via(client: TestClient, forwarded: str) -> int:
        return (await post(client, headers={"X-Forwarded-For": forwarded})).status

    assert [await via(proxied, f"198.51.100.{i}, 203.0.113.5") for i in range(3)] == [
        201,
        201,
        429,
    ]
    assert await via(proxied, "203.0.113.6") == 201
    # One IPv6 /64 is one client.
    assert [await via(proxied, f"2001:db8:1:2::{i}") for i in range(1, 4)] == [201, 201, 429]
    assert await via(proxied, "2001:db8:1:3::1") == 201

    direct = await make_client(config(tmp_path / "direct", limits=limits))
    assert [await via(direct, f"203.0.113.{i}") for i in range(3)] == [201, 201, 429]


async def test_a_site_wide_limit_counts_every_client(make_client, tmp_path) -> None:
    """`site_per_minute` limits new sessions on the site from all clients together."""
    limits = {"site_per_minute": 3, "site_burst": 3}
    client = await make_client(config(tmp_path, limits=limits, trusted_proxies=["127.0.0.1"]))
    statuses = [
        (await post(client, headers={"X-Forwarded-For": f"203.0.113.{i}"})).status for i in range(4)
    ]
    assert statuses == [201, 201, 201, 429]
    metrics = await (await client.get("/metrics")).text()
    assert 'ctgw_sessions_limited_total{limit="site",site="demo"} 1' in metrics


async def test_amp_answers_only_the_site_origins_and_its_amp_cache(make_client) -> None:
    """AMP echoes the Origin, with credentials, only for the site's origins, their AMP Cache
    origins and the AMP Cache itself; another origin gets 403, no grant, and no lease."""
    client = await make_client()
    for origin in (ORIGIN, AMP_CACHE, "https://cdn.ampproject.org"):
        resp = await client.get("/v1/amp/demo", headers={**BROWSER, "Origin": origin})
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == origin
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    held = live(client)
    for origin in ("https://evil.example", "https://evil-example.cdn.ampproject.org", "null"):
        resp = await client.get("/v1/amp/demo", headers={**BROWSER, "Origin": origin})
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert "Access-Control-Allow-Credentials" not in resp.headers
    assert live(client) == held


async def test_amp_is_limited_per_client_with_a_readable_429(make_client, tmp_path) -> None:
    """AMP requests count against the same allowance; the 429 carries Retry-After and the
    origin's grant, so amp-call-tracking reads it and keeps the link's own number."""
    client = await make_client(config(tmp_path, limits={"client_per_minute": 2, "client_burst": 2}))
    headers = {**BROWSER, "Origin": AMP_CACHE}
    statuses = [(await client.get("/v1/amp/demo", headers=headers)).status for _ in range(2)]
    assert statuses == [200, 200]
    limited = await client.get("/v1/amp/demo", headers=headers)
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "30"
    assert limited.headers["Access-Control-Allow-Origin"] == AMP_CACHE
    assert limited.headers["Access-Control-Allow-Credentials"] == "true"
    assert (await limited.json())["error"]["code"] == "rate_limited"


async def test_amp_holds_a_number_only_its_amp_lease(
    make_client, tmp_path, clock: FakeClock
) -> None:
    """An AMP lease lives `amp_lease_seconds`, not the 900 s grace: then the number is free."""
    client = await make_client(demo_config(tmp_path, amp_lease_seconds=60, cooldown_seconds=0))
    for _ in range(10):
        await client.get("/v1/amp/demo", headers=BROWSER)
    assert live(client) == 10
    clock.advance(seconds=61)
    assert live(client) == 0
    body = await (await client.get("/v1/amp/demo", headers=BROWSER)).json()
    assert body["phoneNumber"] in POOL


def test_trusted_proxies_must_be_addresses() -> None:
    """A trusted proxy that is no address or network stops the start, naming the key."""
    with pytest.raises(ConfigError, match=r"http\.trusted_proxies\[1\].*not an IP address"):
        parse_config({"http": {"trusted_proxies": ["10.0.0.0/8", "proxy.local"]}})
    env = {"CTGW_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}
    assert parse_config({}, environ=env).http.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]


def test_amp_lease_must_be_a_real_time() -> None:
    """An AMP lease of 0 s (a number free to others at once) or past ten years stops the start."""
    for seconds in (0, 10**12):
        pool = {"target": TARGET, "numbers": POOL, "amp_lease_seconds": seconds}
        with pytest.raises(ConfigError, match=r"pools\[0\]\.amp_lease_seconds"):
            parse_config({"sites": [{"key": "demo", "pools": [pool]}]})
