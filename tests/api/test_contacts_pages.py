"""The CRM's staff pages: contacts, a contact, tasks and the disposition form; every value
escaped, every form with the session's CSRF token, other sites' leads hidden."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.http.pages import CSP
from tests.api.test_contacts_api import crm  # noqa: F401 - the fixture
from tests.api.test_staff_login import add_user, log_in

pytestmark = pytest.mark.timeout(60)

EVIL = '<script>alert("x")</script>'


async def _contact_id(client: TestClient) -> str:
    row = await client.app[DB].fetchone("SELECT contact_id FROM contacts")
    return str(row["contact_id"])


async def _page(client: TestClient, path: str, status: int = 200) -> str:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Security-Policy"] == CSP
    return await resp.text()


async def test_an_agent_works_a_lead_from_the_pages(crm: TestClient) -> None:  # noqa: F811
    """List -> contact page -> edit (escaped back) -> task closed -> disposition set."""
    await add_user(crm, "al@example.com", "agent", ["demo"])
    csrf = await log_in(crm, "al@example.com")
    contact_id = await _contact_id(crm)
    listing = await _page(crm, "/staff/contacts?status=new")
    assert f"/staff/contacts/{contact_id}?site=demo" in listing and "shop" not in listing
    assert "+12025550100" not in await _page(crm, "/staff/contacts?status=lost")
    await _page(crm, "/staff/contacts?status=<x>", 400)

    url = f"/staff/contacts/{contact_id}?site=demo"
    page = await _page(crm, url)
    assert "San Francisco" not in page or "Place" in page
    assert 'name="csrf"' in page and "/staff/calls/m1/disposition" in page
    form = {"csrf": csrf, "site": "demo", "status": "qualified", "tags": EVIL, "notes": EVIL}
    saved = await crm.post(f"/staff/contacts/{contact_id}", data=form, allow_redirects=False)
    assert saved.status == 303
    page = await _page(crm, saved.headers["Location"])
    assert EVIL not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script" not in page and "style=" not in page
    assert re.search(r"<td>status</td><td>new</td><td>qualified</td>", page)

    tasks = await _page(crm, "/staff/tasks")
    assert "/staff/tasks/t-m1/close" in tasks
    closed = await crm.post(
        "/staff/tasks/t-m1/close", data={"csrf": csrf, "back": "tasks"}, allow_redirects=False
    )
    assert closed.status == 303 and closed.headers["Location"] == "/staff/tasks"
    assert "t-m1" not in await _page(crm, "/staff/tasks")

    data = {"csrf": csrf, "disposition": "booked", "note": EVIL}
    set_ = await crm.post("/staff/calls/m1/disposition", data=data, allow_redirects=False)
    assert set_.status == 303
    page = await _page(crm, url)
    assert "booked: &lt;script&gt;" in page and EVIL not in page
    status = await crm.app[DB].fetchone("SELECT status FROM leads WHERE site = 'demo'")
    assert status["status"] == "customer"
    bad = await crm.post("/staff/calls/m1/disposition", data={"csrf": csrf, "disposition": "won"})
    assert bad.status == 400


async def test_forms_need_the_csrf_token_and_the_site(crm: TestClient) -> None:  # noqa: F811
    await add_user(crm, "mo@example.com", "marketer", ["shop"])
    csrf = await log_in(crm, "mo@example.com")
    contact_id = await _contact_id(crm)
    for path, data in (
        (f"/staff/contacts/{contact_id}", {"site": "shop", "notes": "x"}),
        ("/staff/tasks/t-m1/close", {}),
        ("/staff/calls/s1/disposition", {"disposition": "spam"}),
    ):
        for token in ({}, {"csrf": "wrong"}):
            resp = await crm.post(path, data={**data, **token}, allow_redirects=False)
            assert resp.status == 403, path
    # The right token, another site: still 403.
    other = {"csrf": csrf, "site": "demo", "notes": "x"}
    assert (await crm.post(f"/staff/contacts/{contact_id}", data=other)).status == 403
    assert (await crm.post("/staff/tasks/t-m1/close", data={"csrf": csrf})).status == 403
    assert (
        await crm.post("/staff/calls/m1/disposition", data={"csrf": csrf, "disposition": "spam"})
    ).status == 403
    await _page(crm, f"/staff/contacts/{contact_id}?site=demo", 403)
    await _page(crm, "/staff/contacts?site=demo", 403)
    await _page(crm, "/staff/tasks?site=demo", 403)
    assert "shop" in await _page(crm, f"/staff/contacts/{contact_id}")
    notes = await crm.app[DB].fetchone("SELECT count(*) AS n FROM leads WHERE notes != ''")
    assert notes["n"] == 0


async def test_the_call_page_has_the_disposition_form(crm: TestClient) -> None:  # noqa: F811
    await add_user(crm, "ann@example.com", "admin")
    await log_in(crm, "ann@example.com")
    page = await _page(crm, "/staff/calls/m1")
    assert 'action="/staff/calls/m1/disposition"' in page
    assert '<option value="quote sent">quote sent</option>' in page
