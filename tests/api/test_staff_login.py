"""Staff log in and out: the session cookie, wrong passwords, the throttle, session expiry."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.http.pages import CSP
from gateway.store.staff import StaffUser, create_user
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)

PASSWORD = "correct horse battery staple"


async def add_user(
    client: TestClient,
    email: str = "ann@example.com",
    role: str = "admin",
    sites: Iterable[str] = (),
    name: str = "Ann",
) -> StaffUser:
    return await create_user(
        client.app[DB],
        email=email,
        name=name,
        role=role,
        sites=sites,
        password=PASSWORD,
        at=datetime.now(UTC),
    )


async def post_login(client: TestClient, email: str, password: str = PASSWORD, **extra: str):
    return await client.post(
        "/staff/login",
        data={"email": email, "password": password, **extra},
        allow_redirects=False,
    )


async def log_in(client: TestClient, email: str = "ann@example.com") -> str:
    """Log in (the client keeps the cookie) and return the session's CSRF token."""
    resp = await post_login(client, email)
    assert resp.status == 303, await resp.text()
    page = await client.get("/staff/dashboard", allow_redirects=False)
    found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found is not None
    return found.group(1)


async def test_login_sets_a_strict_httponly_session_cookie(client: TestClient) -> None:
    """A right password: 303 to the dashboard and the cookie ctgw_staff with HttpOnly,
    SameSite=Strict, Path=/ (not Secure over plain http); only its hash is stored."""
    await add_user(client)
    resp = await post_login(client, "Ann@Example.com")
    assert resp.status == 303
    assert resp.headers["Location"] == "/staff/dashboard"
    cookie = resp.cookies["ctgw_staff"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]
    token = cookie.value
    assert len(token) >= 40
    stored = await client.app[DB].fetchall("SELECT token_hash FROM staff_sessions")
    assert len(stored) == 1 and token not in stored[0]["token_hash"]
    dash = await client.get("/staff/dashboard", allow_redirects=False)
    assert dash.status == 200
    assert "<h1>Dashboard</h1>" in await dash.text()


async def test_login_goes_back_to_the_page_asked_for_but_never_off_site(
    client: TestClient,
) -> None:
    """`next` is followed for staff paths only: no open redirect."""
    await add_user(client)
    first = await client.get("/staff/users?x=1", allow_redirects=False)
    assert first.status == 303
    assert first.headers["Location"] == "/staff/login?next=/staff/users%3Fx%3D1"
    resp = await post_login(client, "ann@example.com", next="/staff/users?x=1")
    assert resp.headers["Location"] == "/staff/users?x=1"
    bad_paths = ("https://evil.example/", "//evil.example/staff/", "/staff/\\evil", "/v1/sites")
    for bad in (*bad_paths, "/staff/ü", "/staff/x\r\nSet-Cookie: a=b"):
        client.session.cookie_jar.clear()
        resp = await post_login(client, "ann@example.com", next=bad)
        assert resp.headers["Location"] == "/staff/dashboard", bad


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient) -> None:
    """401 with the login form again, no cookie, and no telling which part was wrong."""
    await add_user(client)
    wrong = await post_login(client, "ann@example.com", "not the password!")
    unknown = await post_login(client, "bob@example.com")
    for resp in (wrong, unknown):
        assert resp.status == 401
        assert "ctgw_staff" not in resp.cookies
        assert "Wrong e-mail or password." in await resp.text()
        assert resp.headers["Content-Security-Policy"] == CSP
    assert (await client.get("/staff/dashboard", allow_redirects=False)).status == 303


async def test_bad_login_forms_are_400_never_500(client: TestClient) -> None:
    """A login without fields, with a JSON body, or with a file instead of text: 400."""
    empty = await client.post("/staff/login", data={}, allow_redirects=False)
    assert empty.status == 400
    as_json = await client.post("/staff/login", json={"email": "a@b.example"})
    assert as_json.status == 400
    form = aiohttp.FormData()
    form.add_field("email", b"\xff\xfe", filename="x.bin")
    form.add_field("password", PASSWORD)
    filed = await client.post("/staff/login", data=form)
    assert filed.status == 400
    assert "Enter your e-mail and password." in await filed.text()


async def test_a_login_from_another_origin_is_refused(client: TestClient) -> None:
    """The login form carries no token yet: an Origin header naming another site gets 403."""
    await add_user(client)
    resp = await client.post(
        "/staff/login",
        data={"email": "ann@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403 and "ctgw_staff" not in resp.cookies
    cross = await client.post(
        "/staff/login",
        data={"email": "ann@example.com", "password": PASSWORD},
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert cross.status == 403
    same = await client.post(
        "/staff/login",
        data={"email": "ann@example.com", "password": PASSWORD},
        headers={"Origin": f"http://{client.host}:{client.port}"},
        allow_redirects=False,
    )
    assert same.status == 303


async def test_five_failures_for_an_email_throttle_it_for_15_minutes(
    client: TestClient, clock: FakeClock
) -> None:
    """After 5 wrong passwords even the right one gets 429 with Retry-After, until 15 minutes
    after the first failure; then it logs in."""
    await add_user(client)
    for _ in range(5):
        assert (await post_login(client, "ann@example.com", "wrong password!!")).status == 401
    blocked = await post_login(client, "ann@example.com")
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 900
    assert blocked.headers["Content-Security-Policy"] == CSP
    assert "ctgw_staff" not in blocked.cookies
    clock.advance(minutes=15, seconds=1)
    assert (await post_login(client, "ann@example.com")).status == 303


async def test_twenty_failures_from_one_address_throttle_every_email(client: TestClient) -> None:
    """One address trying many e-mails is stopped after 20 failures in 15 minutes."""
    await add_user(client)
    for i in range(20):
        assert (await post_login(client, f"guess{i}@example.com")).status == 401
    blocked = await post_login(client, "ann@example.com")
    assert blocked.status == 429 and int(blocked.headers["Retry-After"]) > 0


async def test_sessions_expire_after_12_idle_hours(client: TestClient, clock: FakeClock) -> None:
    """Used within 12 h the session lives on; 12 h without a request ends it (row deleted)."""
    await add_user(client)
    await log_in(client)
    clock.advance(hours=11)
    assert (await client.get("/staff/dashboard", allow_redirects=False)).status == 200
    clock.advance(hours=11)
    assert (await client.get("/staff/dashboard", allow_redirects=False)).status == 200
    clock.advance(hours=12, seconds=1)
    resp = await client.get("/staff/dashboard", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/staff/login")
    assert await client.app[DB].fetchall("SELECT * FROM staff_sessions") == []


async def test_sessions_end_after_7_days_however_busy(client: TestClient, clock: FakeClock) -> None:
    """A session used every 10 hours still ends 7 days after the login."""
    await add_user(client)
    await log_in(client)
    for _ in range(16):  # 160 h < 168 h
        clock.advance(hours=10)
        assert (await client.get("/staff/dashboard", allow_redirects=False)).status == 200
    clock.advance(hours=8, seconds=1)
    assert (await client.get("/staff/dashboard", allow_redirects=False)).status == 303


async def test_logout_deletes_the_session(client: TestClient) -> None:
    """POST /staff/logout with the CSRF token: the row is gone, the old cookie opens nothing."""
    await add_user(client)
    csrf = await log_in(client)
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))["ctgw_staff"].value
    resp = await client.post("/staff/logout", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/staff/login"
    assert await client.app[DB].fetchall("SELECT * FROM staff_sessions") == []
    again = await client.get(
        "/staff/dashboard", cookies={"ctgw_staff": token}, allow_redirects=False
    )
    assert again.status == 303


async def test_guesses_sent_at_once_are_throttled_too(client: TestClient) -> None:
    """Twelve wrong passwords sent together: at most 5 are checked, the rest get 429."""
    await add_user(client)
    answers = await asyncio.gather(
        *(post_login(client, "ann@example.com", f"guess number {i:02d}") for i in range(12))
    )
    statuses = sorted(r.status for r in answers)
    assert statuses.count(401) == 5 and statuses.count(429) == 7


async def test_an_agent_lands_on_the_agent_console_and_sees_only_its_links(
    client: TestClient,
) -> None:
    """Agents have no dashboard (403): logging in, and /staff/, take them to their console,
    and their menu links only pages they may open."""
    await add_user(client, "ed@example.com", role="agent", sites=["demo"])
    resp = await post_login(client, "ed@example.com")
    assert resp.status == 303 and resp.headers["Location"] == "/staff/agent"
    home = await client.get("/staff/", allow_redirects=False)
    assert home.headers["Location"] == "/staff/agent"
    console = await client.get("/staff/agent", allow_redirects=False)
    assert console.status == 200
    links = set(re.findall(r'<li><a href="([^"]+)"', await console.text()))
    assert links == {"/staff/contacts", "/staff/tasks", "/staff/agent"}
    # Asked for a page by name, it still goes there (and the page itself says 403).
    await client.post("/staff/logout", allow_redirects=False)
    again = await post_login(client, "ed@example.com", next="/staff/tasks")
    assert again.headers["Location"] == "/staff/tasks"
