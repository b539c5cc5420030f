"""Who sees what: roles, CSRF on every form, API keys beside sessions, sites, page headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import parse_config
from gateway.http.pages import CSP
from gateway.http.staff_auth import require_site, staff_or_key, visible_sites
from gateway.store.keys import create_key
from gateway.store.staff import list_users
from tests.api.conftest import demo_config
from tests.api.test_staff_login import PASSWORD, add_user, log_in
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)


def _second_site(raw: dict) -> dict:
    other = dict(raw["sites"][0], key="shop", allowed_origins=["https://shop.example"])
    other["pools"] = [
        {"target": "+14155550200", "numbers": ["+14155550201", "+14155550202"], "overflow": ""}
    ]
    other.pop("static_numbers", None)
    return {**raw, "sites": [*raw["sites"], other]}


@pytest.fixture
async def two_sites(aiohttp_client, tmp_path: Path, clock: FakeClock) -> TestClient:
    """The demo config plus a site `shop`, and a test route `/test/sites/{site}` behind
    staff_or_key("admin", "marketer") + require_site, GET and POST."""
    config = parse_config(_second_site(demo_config(tmp_path)), source="test")
    app = create_app(config, clock=clock)

    @staff_or_key("admin", "marketer")
    async def site_route(request: web.Request) -> web.Response:
        require_site(request, request.match_info["site"])
        sites = visible_sites(request)
        return web.json_response({"visible": sorted(sites) if sites is not None else None})

    app.router.add_get("/test/sites/{site}", site_route)
    app.router.add_post("/test/sites/{site}", site_route)
    return await aiohttp_client(app)


async def test_staff_or_key_lets_keys_and_the_right_roles_in(two_sites: TestClient) -> None:
    """A Bearer key sees every site; a marketer of demo sees demo, 403 on shop; an agent gets
    403; no credentials 401; a bad key 401; all as ApiError JSON."""
    client = two_sites
    key = await create_key(client.app[DB], "ops", datetime.now(UTC))
    auth = {"Authorization": f"Bearer {key}"}
    resp = await client.get("/test/sites/shop", headers=auth)
    assert resp.status == 200 and (await resp.json()) == {"visible": None}
    bad = await client.get("/test/sites/shop", headers={"Authorization": "Bearer ctgw_nope"})
    assert bad.status == 401 and (await bad.json())["error"]["code"] == "unauthorized"
    anon = await client.get("/test/sites/demo")
    assert anon.status == 401 and (await anon.json())["error"]["code"] == "unauthorized"

    await add_user(client, "mia@example.com", "marketer", ["demo"])
    await log_in(client, "mia@example.com")
    mine = await client.get("/test/sites/demo")
    assert mine.status == 200 and (await mine.json()) == {"visible": ["demo"]}
    other = await client.get("/test/sites/shop")
    assert other.status == 403 and (await other.json())["error"]["code"] == "forbidden"

    client.session.cookie_jar.clear()
    await add_user(client, "al@example.com", "agent", ["demo"])
    await log_in(client, "al@example.com")
    agent = await client.get("/test/sites/demo")
    assert agent.status == 403 and (await agent.json())["error"]["code"] == "forbidden"


async def test_a_cookie_post_to_a_json_route_needs_the_csrf_header(two_sites: TestClient) -> None:
    """A staff session's POST without X-CSRF-Token (or with a wrong one) is 403; with it, 200."""
    client = two_sites
    await add_user(client, "mia@example.com", "marketer", ["demo"])
    csrf = await log_in(client, "mia@example.com")
    assert (await client.post("/test/sites/demo")).status == 403
    wrong = await client.post("/test/sites/demo", headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status == 403
    odd = await client.post("/test/sites/demo", headers={"X-CSRF-Token": "\udcff é"})
    assert odd.status == 403
    ok = await client.post("/test/sites/demo", headers={"X-CSRF-Token": csrf})
    assert ok.status == 200


async def test_an_admin_listed_for_sites_sees_only_those(two_sites: TestClient) -> None:
    """An admin with sites listed is held to them; one with none sees every site."""
    client = two_sites
    await add_user(client, "boss@example.com", "admin", ["demo"])
    await log_in(client, "boss@example.com")
    assert (await client.get("/test/sites/shop")).status == 403
    client.session.cookie_jar.clear()
    await add_user(client, "root@example.com", "admin")
    await log_in(client, "root@example.com")
    resp = await client.get("/test/sites/shop")
    assert resp.status == 200 and (await resp.json()) == {"visible": None}


async def test_roles_on_the_pages(client: TestClient) -> None:
    """A marketer gets 403 on /staff/users (and sees no Users link); an agent 403 on the
    dashboard; an admin both."""
    await add_user(client, "mia@example.com", "marketer", ["demo"])
    await log_in(client, "mia@example.com")
    dash = await client.get("/staff/dashboard")
    assert dash.status == 200 and 'href="/staff/users"' not in await dash.text()
    users = await client.get("/staff/users", allow_redirects=False)
    assert users.status == 403 and "Forbidden" in await users.text()

    client.session.cookie_jar.clear()
    await add_user(client, "al@example.com", "agent", ["demo"])
    await log_in(client, "al@example.com")
    assert (await client.get("/staff/dashboard", allow_redirects=False)).status == 403

    client.session.cookie_jar.clear()
    await add_user(client)
    await log_in(client)
    page = await client.get("/staff/users")
    assert page.status == 200 and 'href="/staff/users"' in await page.text()


async def test_posts_without_the_csrf_token_are_refused(client: TestClient) -> None:
    """POST /staff/users and /staff/logout without the form's token (or with another) are 403
    and change nothing."""
    await add_user(client)
    csrf = await log_in(client)
    new = {"email": "x@example.com", "role": "admin", "password": PASSWORD}
    for data in (new, {**new, "csrf": "wrong"}):
        resp = await client.post("/staff/users", data=data, allow_redirects=False)
        assert resp.status == 403
    assert [u.email for u in await list_users(client.app[DB])] == ["ann@example.com"]
    out = await client.post("/staff/logout", data={}, allow_redirects=False)
    assert out.status == 403
    assert len(await client.app[DB].fetchall("SELECT * FROM staff_sessions")) == 1
    resp = await client.post(
        "/staff/users", data={**new, "csrf": csrf, "sites": "demo"}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/staff/users?created=1"
    added = [u for u in await list_users(client.app[DB]) if u.email == "x@example.com"]
    assert added and added[0].sites == frozenset({"demo"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "not an email"}, "e-mail address is not valid"),
        ({"email": "ann@example.com"}, "exists already"),
        ({"role": "root"}, "role must be one of"),
        ({"role": "marketer"}, "needs at least one site"),
        ({"sites": "nowhere"}, "no such site"),
        ({"password": "short"}, "password must be 12"),
        ({"password": "x" * 2000}, "password must be 12"),
        ({"name": "a\x00b"}, "the name must be"),
    ],
)
async def test_bad_user_forms_say_what_is_wrong(client: TestClient, change, message) -> None:
    """Every bad field of the add-user form: 400, the form again with the reason, no user."""
    await add_user(client)
    csrf = await log_in(client)
    data = {"csrf": csrf, "email": "new@example.com", "role": "admin", "password": PASSWORD}
    resp = await client.post("/staff/users", data={**data, **change})
    assert resp.status == 400
    text = await resp.text()
    assert message in text, text
    assert len(await list_users(client.app[DB])) == 1


async def test_a_form_post_that_is_no_form_is_400(client: TestClient) -> None:
    """JSON or a file instead of the form fields: 400, never a 500."""
    await add_user(client)
    csrf = await log_in(client)
    resp = await client.post("/staff/users", json={"email": "a"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 400
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("email", b"x@example.com", filename="e.txt")
    form.add_field("role", "admin")
    form.add_field("password", PASSWORD)
    filed = await client.post("/staff/users", data=form)
    assert filed.status == 400 and "e-mail address is not valid" in await filed.text()


async def test_a_visitor_sent_script_in_a_name_is_shown_as_text(client: TestClient) -> None:
    """A user named `<script>…` appears escaped in the users table and the nav."""
    await add_user(client, name='<script>alert("x")</script>')
    await log_in(client)
    text = await (await client.get("/staff/users")).text()
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text


async def test_every_staff_page_has_the_security_headers(client: TestClient) -> None:
    """Login, dashboard, users, 403 and 401 pages all carry the CSP and the other headers; no
    page holds an inline script or style."""
    await add_user(client)
    await add_user(client, "al@example.com", "agent", ["demo"])
    pages = [await client.get("/staff/login")]
    pages.append(await client.post("/staff/login", data={"email": "a@b.example", "password": "x"}))
    await log_in(client)
    pages += [await client.get("/staff/dashboard"), await client.get("/staff/users")]
    client.session.cookie_jar.clear()
    await log_in(client, "al@example.com")
    pages.append(await client.get("/staff/users"))
    assert [p.status for p in pages] == [200, 401, 200, 200, 403]
    for resp in pages:
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert resp.headers["Cache-Control"] == "no-store"
        text = await resp.text()
        assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son\w+=", text), text


async def test_staff_home_and_static_css(client: TestClient) -> None:
    """/staff/ sends to the dashboard; the stylesheet is served from /staff/static/."""
    home = await client.get("/staff/", allow_redirects=False)
    assert home.status == 303 and home.headers["Location"] == "/staff/dashboard"
    css = await client.get("/staff/static/staff.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert (await client.get("/staff/static/../../app.py")).status == 404
