"""Click-to-call from the staff pages, short of Asterisk (tests/integration/test_click_to_call.py
rings real phones): off, no phone, no AMI, a bad number; the contact page's and the tasks
page's Call forms."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.metrics import Metrics
from gateway.store.agents import set_endpoints
from gateway.telephony.call_ledger import CallLedger
from gateway.telephony.click_to_call import ClickToCallError, outbound_number
from tests.api.conftest import demo_config
from tests.api.test_crm_ledger import final, record_call, settle
from tests.api.test_staff_login import add_user, log_in

pytestmark = pytest.mark.timeout(60)


async def _crm_client(make_client, tmp_path: Path, clock, *, on: bool) -> TestClient:
    raw = demo_config(tmp_path)
    if on:
        raw["calls"] = {"click_to_call": True, "outbound_context": "test-outbound"}
    client = await make_client(raw)
    db = client.app[DB]
    await record_call(db, "m1", clock.now())
    await CallLedger(db, Metrics()).call_updated(final("m1", "missed", clock.now()))
    await settle(db)
    return client


async def _contact_id(client: TestClient) -> str:
    row = await client.app[DB].fetchone("SELECT contact_id FROM contacts")
    return str(row["contact_id"])


async def _click(client: TestClient, csrf: str, contact_id: str) -> tuple[int, str]:
    resp = await client.post(
        f"/staff/contacts/{contact_id}/call",
        data={"csrf": csrf, "site": "demo"},
        allow_redirects=False,
    )
    return resp.status, await resp.text()


async def test_off_by_default_no_button_and_the_click_says_so(make_client, tmp_path, clock) -> None:
    client = await _crm_client(make_client, tmp_path, clock, on=False)
    user = await add_user(client, "al@example.com", "agent", ["demo"])
    await set_endpoints(client.app[DB], user.user_id, ["PJSIP/agent1"])
    csrf = await log_in(client, "al@example.com")
    contact_id = await _contact_id(client)
    page = await client.get(f"/staff/contacts/{contact_id}?site=demo")
    assert "click-to-call" not in await page.text()
    status, text = await _click(client, csrf, contact_id)
    assert status == 404 and "Click-to-call is off" in text


async def test_on_the_button_shows_and_a_click_needs_a_phone_and_ami(
    make_client, tmp_path, clock
) -> None:
    client = await _crm_client(make_client, tmp_path, clock, on=True)
    user = await add_user(client, "al@example.com", "agent", ["demo"])
    csrf = await log_in(client, "al@example.com")
    contact_id = await _contact_id(client)
    page = await client.get(f"/staff/contacts/{contact_id}?site=demo")
    assert f'action="/staff/contacts/{contact_id}/call"' in await page.text()
    status, text = await _click(client, csrf, contact_id)
    assert status == 409 and "no phone endpoint" in text
    await set_endpoints(client.app[DB], user.user_id, ["PJSIP/agent1"])
    before = await client.app[DB].fetchone("SELECT count(*) FROM calls")
    status, text = await _click(client, csrf, contact_id)
    assert status == 503 and "not connected to AMI" in text  # these tests run without AMI
    assert await client.app[DB].fetchone("SELECT count(*) FROM calls") == before
    # Without the session's CSRF token nothing is placed.
    status, _ = await _click(client, "forged", contact_id)
    assert status == 403


async def test_the_tasks_page_has_a_call_form_per_open_task(make_client, tmp_path, clock) -> None:
    """Each open task has a Call form posting to its own click-to-call, with the session's CSRF
    token; with click-to-call off, or for a marketer, there is none."""
    client = await _crm_client(make_client, tmp_path, clock, on=True)
    user = await add_user(client, "al@example.com", "agent", ["demo"])
    await set_endpoints(client.app[DB], user.user_id, ["PJSIP/agent1"])
    csrf = await log_in(client, "al@example.com")
    task = await client.app[DB].fetchone("SELECT task_id FROM tasks")
    action = f'action="/staff/tasks/{task["task_id"]}/call"'
    page = await (await client.get("/staff/tasks")).text()
    form = page.split(action, 1)[1].split("</form>", 1)[0]
    assert f'name="csrf" value="{csrf}"' in form and "Call" in form
    # The form's post reaches the call (these tests run without AMI: 503), a forged one not.
    resp = await client.post(
        f"/staff/tasks/{task['task_id']}/call", data={"csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 503 and "not connected to AMI" in await resp.text()
    resp = await client.post(
        f"/staff/tasks/{task['task_id']}/call", data={"csrf": "forged"}, allow_redirects=False
    )
    assert resp.status == 403
    client.session.cookie_jar.clear()
    await add_user(client, "mo@example.com", "marketer", ["demo"])
    await log_in(client, "mo@example.com")
    page = await (await client.get("/staff/tasks")).text()
    assert f'action="/staff/tasks/{task["task_id"]}/close"' in page and action not in page


async def test_no_call_form_on_the_tasks_page_when_click_to_call_is_off(
    make_client, tmp_path, clock
) -> None:
    client = await _crm_client(make_client, tmp_path, clock, on=False)
    user = await add_user(client, "al@example.com", "agent", ["demo"])
    await set_endpoints(client.app[DB], user.user_id, ["PJSIP/agent1"])
    await log_in(client, "al@example.com")
    page = await (await client.get("/staff/tasks")).text()
    assert "close-task" in page and "/call" not in page


def test_only_an_e164_number_is_dialed() -> None:
    assert outbound_number("+14155550100") == "+14155550100"
    for bad in ("+1415555010a", "14155550100", "+1 415 555 0100", "+14155550100,1", ""):
        with pytest.raises(ClickToCallError) as caught:
            outbound_number(bad)
        assert caught.value.status == 400
