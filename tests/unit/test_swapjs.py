"""GET /swap.js, its content-hashed twin and the /demo/ pages, on a real aiohttp server."""

from __future__ import annotations

import gzip
import re
from typing import Any

import pytest
from aiohttp import web

from gateway.http.swapjs import (
    ALIAS_CACHE,
    IMMUTABLE_CACHE,
    STATIC_DIR,
    add_routes,
    load_swap_script,
    minify,
)


@pytest.fixture
async def client(aiohttp_client: Any) -> Any:
    app = web.Application()
    add_routes(app)
    return await aiohttp_client(app)


async def test_alias_serves_gzipped_script_with_short_revalidated_cache(client: Any) -> None:
    """/swap.js answers the gzip body with a five-minute, must-revalidate cache and an ETag."""
    answer = await client.get(
        "/swap.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == ALIAS_CACHE
    assert answer.headers["Content-Encoding"] == "gzip"
    assert answer.headers["Content-Type"].startswith("application/javascript")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    body = await answer.read()
    assert len(body) < 4096
    assert gzip.decompress(body) == load_swap_script().body


async def test_hashed_url_is_immutable_and_old_hash_redirects(client: Any) -> None:
    """/swap.<hash>.js is cached a year; an unknown hash redirects to the current one."""
    script = load_swap_script()
    answer = await client.get(script.hashed_path)
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == IMMUTABLE_CACHE
    assert await answer.read() == script.body
    stale = await client.get("/swap.000000000000.js", allow_redirects=False)
    assert stale.status == 302
    assert stale.headers["Location"] == script.hashed_path


async def test_matching_etag_answers_not_modified(client: Any) -> None:
    """A revalidation with the current ETag gets 304 and no body."""
    first = await client.get("/swap.js")
    again = await client.get("/swap.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert await again.read() == b""


async def test_demo_pages_carry_a_strict_csp(client: Any) -> None:
    """The demo landing page loads swap.js and is served with script-src 'self'."""
    answer = await client.get("/demo/")
    assert answer.status == 200
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert 'src="/swap.js" data-site="demo"' in await answer.text()


async def test_demo_without_ctgw_drops_only_the_script_tag(client: Any) -> None:
    """?ctgw=off serves the same page without the swap.js tag (the load-time baseline)."""
    with_tag = await (await client.get("/demo/")).text()
    without = await (await client.get("/demo/?ctgw=off")).text()
    assert "/swap.js" not in without
    assert len(with_tag) - len(without) == len(
        '<script async src="/swap.js" data-site="demo"></script>\n'
    )


async def test_client_side_routes_get_the_app_shell(client: Any) -> None:
    """A reloaded pushState route (/demo/pricing) answers the landing page."""
    answer = await client.get("/demo/pricing")
    assert answer.status == 200
    assert "Demo Plumbing Co." in await answer.text()


@pytest.mark.parametrize("path", ["/demo/nope.js", "/demo/..%2fswap.js", "/demo/.env"])
async def test_unknown_or_escaping_demo_files_are_not_found(client: Any, path: str) -> None:
    """Only files in gateway/http/static/demo are served; anything else with a dot is a 404."""
    answer = await client.get(path)
    assert answer.status == 404


def test_minify_drops_comments_and_indentation_only() -> None:
    """Full-line comments, blank lines and indentation go; code lines stay whole and in order."""
    source = "// head\n(function () {\n  // why\n  var a = 'x // y';\n\n  return a;\n})();\n"
    assert minify(source) == "(function () {\nvar a = 'x // y';\nreturn a;\n})();\n"


def test_script_uses_nothing_a_strict_csp_forbids() -> None:
    """swap.js has no eval, Function constructor, string timers, inline styles or innerHTML."""
    source = (STATIC_DIR / "swap.js").read_text()
    for forbidden in (
        r"\beval\(",
        r"new Function",
        r"setTimeout\(['\"]",
        r"\.style\b",
        "innerHTML",
    ):
        assert not re.search(forbidden, source), forbidden
