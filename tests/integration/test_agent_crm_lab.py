"""The CRM working by itself on real calls: Asterisk 22, the agent's baresip phone (PJSIP/agent1)
and the agent console in headless Chromium. An unanswered call from a new caller makes a
follow-up task; the next call, answered on the phone, shows that task in the pop while it rings,
closes it and makes the lead `contacted`; the disposition the agent saves on the call page moves
the status. An agent sees only the sites they belong to: a call on another site ringing the same
phone pops only for that site's agent, and its contact is not in the first agent's list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.store.database import Database
from tests.api.conftest import open_session
from tests.integration.conftest import new_call_id
from tests.integration.test_screen_pop import (  # noqa: F401 - fixtures
    NO_ANSWER_LINE,
    OTHER_SITE_LINE,
    chromium,
    console_page,
    dial_begin,
    gateway,
    shown,
)
from tests.lab.ami import TestAmi

pytestmark = [pytest.mark.asterisk, pytest.mark.browser, pytest.mark.timeout(120)]

T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = 20) -> T:
    """The first truthy answer of `check`, polled until `timeout`."""
    async with asyncio.timeout(timeout):
        while not (found := await check()):
            await asyncio.sleep(0.1)
    return found


async def lead(db: Database, caller: str, site: str = "demo") -> dict[str, Any] | None:
    row = await db.fetchone(
        "SELECT l.status, l.contact_id FROM leads l JOIN contacts c USING (contact_id)"
        " WHERE c.number = ? AND l.site = ?",
        (caller, site),
    )
    return dict(row) if row else None


async def tasks(db: Database, contact_id: str) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        "SELECT task_id, call_id, closed_at, closed_by FROM tasks WHERE contact_id = ?",
        (contact_id,),
    )
    return [dict(r) for r in rows]


async def ended_call(db: Database, linkedid: str) -> dict[str, Any] | None:
    row = await db.fetchone(
        "SELECT call_id, state FROM calls WHERE linkedid = ? AND ended_at IS NOT NULL",
        (linkedid,),
    )
    return dict(row) if row else None


async def unanswered_call(ami: TestAmi, caller: str) -> str:
    """A call from `caller` to the line nobody answers; the caller gives up after 3 s."""
    call = new_call_id()
    await ami.action(
        "Originate",
        Channel=f"Local/{NO_ANSWER_LINE}@test-inbound",
        ChannelId=call,
        Application="Wait",
        Data="1",
        CallerID=f'"New" <{caller}>',
        Timeout="3000",
        Async="true",
    )
    return call


async def test_a_missed_call_makes_a_task_the_answered_call_closes_and_a_disposition_moves(
    gateway: TestClient,  # noqa: F811 - the fixture imported above
    ami: TestAmi,
    agent_phone: Any,
    chromium: Any,  # noqa: F811
) -> None:
    caller = "+12025550177"
    db = gateway.app[DB]
    page = await console_page(chromium, gateway, "ann@example.com", "PJSIP/agent1")

    missed = await unanswered_call(ami, caller)
    first = await until(lambda: ended_call(db, missed))
    assert first["state"] in ("abandoned", "missed")
    found = await until(lambda: lead(db, caller))
    assert found["status"] == "new"
    follow_up = await until(lambda: tasks(db, found["contact_id"]))
    assert [(t["call_id"], t["closed_at"]) for t in follow_up] == [(first["call_id"], None)]

    url = "https://www.demo-plumbing.example/?utm_source=google&utm_campaign=taps"
    visit = await (await open_session(gateway, url=url)).json()
    answered = new_call_id()
    await ami.originate(visit["numbers"][0]["number"], "test-inbound", f"<{caller}>", answered, 3)
    await dial_begin(ami, answered, "PJSIP/agent1-")
    pop = await page.wait_for_selector(f'article.pop[data-linkedid="{answered}"]', timeout=5000)
    assert "call back" in await (await pop.query_selector(".contact-tasks")).text_content()
    second = await until(lambda: ended_call(db, answered))
    assert second["state"] == "answered"

    async def contacted() -> bool:
        status = await lead(db, caller)
        return status is not None and status["status"] == "contacted"

    await until(contacted)
    closed = (await tasks(db, found["contact_id"]))[0]
    assert closed["closed_at"] and closed["closed_by"] == "system"

    # After the call: the agent sets its disposition on the contact's page, in the browser.
    base = str(gateway.make_url("")).rstrip("/")
    await page.goto(f"{base}/staff/contacts/{found['contact_id']}?site=demo")
    form = f'form.disposition[action="/staff/calls/{second["call_id"]}/disposition"]'
    await page.select_option(f'{form} select[name="disposition"]', "quote sent")
    await page.fill(f'{form} input[name="note"]', "sent by mail")
    async with page.expect_navigation():
        await page.click(f'{form} button[type="submit"]')
    assert (await lead(db, caller))["status"] == "qualified"
    assert "quote sent: sent by mail" in await page.content()
    assert page.problems == []
    await page.context.close()


async def test_an_agent_sees_only_the_sites_they_belong_to(
    gateway: TestClient,  # noqa: F811 - the fixture imported above
    ami: TestAmi,
    agent_phone: Any,
    chromium: Any,  # noqa: F811
) -> None:
    """Ann (site demo) and Olga (site other) share agent1's phone: a call on `other` pops only
    on Olga's page; its contact is in Olga's list, not in Ann's, and Ann may not open it."""
    caller = "+12025550188"
    ann = await console_page(chromium, gateway, "ann@example.com", "PJSIP/agent1")
    olga = await console_page(
        chromium, gateway, "olga@example.com", "PJSIP/agent1", sites=("other",)
    )
    call = new_call_id()
    await ami.originate(OTHER_SITE_LINE, "test-inbound", f'"Oz" <{caller}>', call, 2)
    await dial_begin(ami, call, "PJSIP/agent1-")
    seen = await shown(olga, call)
    assert seen["site"].startswith("other") and seen["caller"].startswith(caller)
    await until(lambda: ended_call(gateway.app[DB], call))
    assert await ann.query_selector(f'article.pop[data-linkedid="{call}"]') is None

    base = str(gateway.make_url("")).rstrip("/")
    for page, listed in ((olga, True), (ann, False)):
        await page.goto(f"{base}/staff/contacts")
        assert (caller in await page.content()) is listed
    forbidden = await ann.goto(f"{base}/staff/contacts?site=other")
    assert forbidden is not None and forbidden.status == 403
    for page in (ann, olga):
        await page.context.close()
