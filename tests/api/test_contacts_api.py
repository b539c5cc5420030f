"""The CRM API: contacts per site with calls, tasks and history; edits checked and kept in the
history; tasks closed by people; dispositions moving the status; other sites' leads hidden."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.metrics import Metrics
from gateway.store.keys import create_key
from gateway.telephony.call_ledger import CallLedger
from tests.api.conftest import demo_config
from tests.api.test_crm_ledger import final, record_call, settle
from tests.api.test_staff_access import _second_site
from tests.api.test_staff_login import add_user, log_in

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def crm(make_client, tmp_path: Path, clock) -> TestClient:
    """Two sites; a caller who missed `demo` (call m1, open task) and once called `shop`."""
    client = await make_client(_second_site(demo_config(tmp_path)))
    db = client.app[DB]
    ledger = CallLedger(db, Metrics())
    at = clock.now()
    await record_call(db, "m1", at)
    await ledger.call_updated(final("m1", "missed", at))
    await record_call(db, "s1", at + timedelta(minutes=1), site="shop")
    await ledger.call_updated(final("s1", "answered", at + timedelta(minutes=1), talk=5.0))
    await settle(db)
    return client


async def _key(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_key(client.app[DB], 'crm', datetime.now(UTC))}"}


async def _contact_id(client: TestClient, auth: dict[str, str]) -> str:
    resp = await client.get("/v1/contacts?site=demo", headers=auth)
    assert resp.status == 200
    return str((await resp.json())["contacts"][0]["contact_id"])


async def test_contacts_are_listed_per_site_and_filtered(crm: TestClient) -> None:
    auth = await _key(crm)
    everything = (await (await crm.get("/v1/contacts", headers=auth)).json())["contacts"]
    assert sorted(c["site"] for c in everything) == ["demo", "shop"]
    demo = next(c for c in everything if c["site"] == "demo")
    assert (demo["status"], demo["calls"], demo["open_tasks"], demo["number"]) == (
        "new",
        1,
        1,
        "+12025550100",
    )
    for query, count in (("status=new", 2), ("status=lost", 0), ("q=2025550", 2), ("q=%25", 0)):
        found = (await (await crm.get(f"/v1/contacts?{query}", headers=auth)).json())["contacts"]
        assert len(found) == count, query
    bad = await crm.get("/v1/contacts?status=won", headers=auth)
    assert bad.status == 400


async def test_a_contact_shows_its_calls_tasks_and_history(crm: TestClient) -> None:
    auth = await _key(crm)
    contact_id = await _contact_id(crm, auth)
    body = await (await crm.get(f"/v1/contacts/{contact_id}?site=demo", headers=auth)).json()
    assert body["number"] == "+12025550100" and body["region"] == "US"
    (lead,) = body["sites"]
    assert [c["call_id"] for c in lead["calls"]] == ["m1"]
    assert [t["call_id"] for t in lead["tasks"]] == ["m1"] and lead["tasks"][0]["open"]
    assert lead["history"][0]["what"] == "task"
    assert lead["first_touch"]["source"] == "billboard"
    both = await (await crm.get(f"/v1/contacts/{contact_id}", headers=auth)).json()
    assert [s["site"] for s in both["sites"]] == ["demo", "shop"]
    assert (await crm.get("/v1/contacts/nope", headers=auth)).status == 404


async def test_edits_are_validated_and_kept_in_the_history(crm: TestClient) -> None:
    auth = await _key(crm)
    contact_id = await _contact_id(crm, auth)
    url = f"/v1/contacts/{contact_id}"
    # Two sites: which lead is meant must be said.
    assert (await crm.patch(url, json={"status": "lost"}, headers=auth)).status == 400
    for bad in ({"status": "won"}, {"tags": "x" * 50}, {"spam": 1}, {"owner": "me"}):
        resp = await crm.patch(url, json={"site": "demo", **bad}, headers=auth)
        assert resp.status == 400, bad
        assert (await resp.json())["error"]["code"] == "invalid_field"
    edit = {"site": "demo", "status": "qualified", "tags": ["vip"], "notes": "<b>hi</b>"}
    resp = await crm.patch(url, json=edit, headers=auth)
    assert resp.status == 200
    (lead,) = (await resp.json())["sites"]
    assert (lead["status"], lead["tags"], lead["notes"]) == ("qualified", ["vip"], "<b>hi</b>")
    changes = {(h["who"], h["what"], h["before"], h["after"]) for h in lead["history"]}
    assert ("key:crm", "status", "new", "qualified") in changes
    assert ("key:crm", "tags", "", "vip") in changes
    # The other site's lead is untouched.
    shop = await (await crm.get(f"{url}?site=shop", headers=auth)).json()
    assert shop["sites"][0]["status"] == "new" and shop["sites"][0]["notes"] == ""


async def test_a_disposition_moves_the_status_and_closes_tasks(crm: TestClient) -> None:
    auth = await _key(crm)
    resp = await crm.post(
        "/v1/calls/m1/disposition", json={"disposition": "booked", "note": "Tue"}, headers=auth
    )
    assert resp.status == 200
    assert await resp.json() == {
        "call_id": "m1",
        "disposition": "booked",
        "note": "Tue",
        "status": "customer",
    }
    contact_id = await _contact_id(crm, auth)
    (lead,) = (await (await crm.get(f"/v1/contacts/{contact_id}?site=demo", headers=auth)).json())[
        "sites"
    ]
    assert lead["status"] == "customer" and not lead["tasks"][0]["open"]
    assert lead["calls"][0]["disposition"] == "booked"
    whats = [h["what"] for h in lead["history"]]
    assert {"disposition", "status"} <= set(whats) and whats.count("task") == 2
    for bad in ({"disposition": "won"}, {"disposition": "booked", "note": 5}, {}):
        assert (await crm.post("/v1/calls/m1/disposition", json=bad, headers=auth)).status == 400
    spam = await crm.post("/v1/calls/s1/disposition", json={"disposition": "spam"}, headers=auth)
    assert (await spam.json())["status"] == "lost"
    row = await crm.app[DB].fetchone("SELECT spam FROM calls WHERE call_id = 's1'")
    assert row["spam"] == 1
    assert (await crm.post("/v1/calls/zz/disposition", json={}, headers=auth)).status == 404


async def test_tasks_are_listed_closed_and_assigned(crm: TestClient, clock) -> None:
    auth = await _key(crm)
    tasks = (await (await crm.get("/v1/tasks", headers=auth)).json())["tasks"]
    assert [t["task_id"] for t in tasks] == ["t-m1"]
    soon = (clock.now() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await (await crm.get(f"/v1/tasks?due={soon}", headers=auth)).json())["tasks"] == []
    agent = await add_user(crm, "al@example.com", "agent", ["demo"])
    other = await add_user(crm, "bo@example.com", "agent", ["shop"])
    for bad in ({"state": "done"}, {"assignee": other.user_id}, {"assignee": 3}, {"x": 1}):
        assert (await crm.patch("/v1/tasks/t-m1", json=bad, headers=auth)).status == 400, bad
    body = {"state": "closed", "assignee": agent.user_id}
    done = await (await crm.patch("/v1/tasks/t-m1", json=body, headers=auth)).json()
    assert done["closed_at"] and done["closed_by"] == "key:crm"
    assert done["assignee"] == agent.user_id
    assert (await (await crm.get("/v1/tasks", headers=auth)).json())["tasks"] == []
    closed = (await (await crm.get("/v1/tasks?state=closed", headers=auth)).json())["tasks"]
    assert [t["task_id"] for t in closed] == ["t-m1"]
    again = await crm.patch("/v1/tasks/t-m1", json={"state": "open"}, headers=auth)
    assert (await again.json())["closed_at"] is None
    assert (await crm.patch("/v1/tasks/nope", json={}, headers=auth)).status == 404


async def test_staff_see_only_their_sites(crm: TestClient) -> None:
    """A marketer or agent of shop: 403 on demo's contacts, tasks, calls; sees shop's lead."""
    contact_id = await _contact_id(crm, await _key(crm))
    for role in ("marketer", "agent"):
        crm.session.cookie_jar.clear()
        await add_user(crm, f"{role}@example.com", role, ["shop"])
        csrf = await log_in(crm, f"{role}@example.com")
        head = {"X-CSRF-Token": csrf}
        assert (await crm.get("/v1/contacts?site=demo")).status == 403
        mine = (await (await crm.get("/v1/contacts")).json())["contacts"]
        assert [c["site"] for c in mine] == ["shop"]
        assert (await crm.get(f"/v1/contacts/{contact_id}?site=demo")).status == 403
        shown = await (await crm.get(f"/v1/contacts/{contact_id}")).json()
        assert [s["site"] for s in shown["sites"]] == ["shop"]
        assert (await crm.get("/v1/tasks?site=demo")).status == 403
        assert (await (await crm.get("/v1/tasks")).json())["tasks"] == []
        denied = await crm.patch("/v1/tasks/t-m1", json={"state": "closed"}, headers=head)
        assert denied.status == 403
        post = await crm.post(
            "/v1/calls/m1/disposition", json={"disposition": "spam"}, headers=head
        )
        assert post.status == 403
        edit = await crm.patch(
            f"/v1/contacts/{contact_id}", json={"site": "demo", "notes": "x"}, headers=head
        )
        assert edit.status == 403
        # Without the CSRF header a cookie's PATCH is refused; with it the own lead is edited.
        no_csrf = await crm.patch(f"/v1/contacts/{contact_id}", json={"notes": "x"})
        assert no_csrf.status == 403
        ok = await crm.patch(f"/v1/contacts/{contact_id}", json={"notes": role}, headers=head)
        assert ok.status == 200 and (await ok.json())["sites"][0]["notes"] == role
    anon = crm.session.cookie_jar.clear() or await crm.get("/v1/contacts")
    assert anon.status == 401
