"""Numbers listed, agents' endpoints, the screen pop's contact card and the route's caller
visitors on both backends (each test runs on SQLite, the reference, then PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.store import agents, calls, contacts, crm, numbers
from gateway.store.database import Write
from gateway.store.times import ts
from numberpool.calls import CallAttribution, CallRecord
from numberpool.crm import HistoryEntry
from tests.postgres.conftest import STAMP

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CALLER = "+14155550123"


def _call(call_id: str, minutes: int, *, visitor: str = "", site: str = "demo") -> CallRecord:
    kind = "active" if visitor else "static"
    return CallRecord(
        call_id=call_id,
        site=site,
        dialed="+14155550111",
        started_at=ts(T0 + timedelta(minutes=minutes)),
        state="missed",
        attribution=CallAttribution(kind, session_id=f"s-{visitor}", visitor_id=visitor or None),
        caller=CALLER,
        contact_id="k1",
    )


def _other_site() -> list[Write]:
    return [
        Write(
            "INSERT INTO sites (key, name, created_at) VALUES (?, ?, ?)",
            ("other", "Other", STAMP),
            rank=10,
        ),
        Write(
            "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, ?, ?, ?)",
            ("other:main", "other", "+14155550200", STAMP),
            rank=20,
        ),
    ]


async def test_numbers_listed_all_and_by_site(store: Any) -> None:
    await store.write(_other_site())
    await store.write(numbers.add_writes("demo:main", ["+14155550112", "+14155550111"], T0))
    await store.write(numbers.add_writes("other:main", ["+14155550201"], T0))
    assert await numbers.list_numbers(store) == [
        ("+14155550111", "demo", "+14155550100"),
        ("+14155550112", "demo", "+14155550100"),
        ("+14155550201", "other", "+14155550200"),
    ]
    assert await numbers.list_numbers(store, "other") == [("+14155550201", "other", "+14155550200")]
    assert await numbers.list_numbers(store, "none") == []


async def test_the_latest_visitors_a_caller_called_from(store: Any) -> None:
    assert await calls.caller_visitors(store, CALLER) == frozenset()  # no calls: no rows
    writes = [calls.call_write(_call("c0", 0))]  # not attributed to a visitor: left out
    visitors = ["v1", "v2", "v1", "v3", "v4", "v5", "v5"]
    writes += [calls.call_write(_call(f"c{n}", n, visitor=v)) for n, v in enumerate(visitors, 1)]
    await store.write(writes)
    # The 5 latest attributed calls went to v5 (twice), v4, v3 and v1; v2 is older.
    assert await calls.caller_visitors(store, CALLER) == {"v1", "v3", "v4", "v5"}
    assert await calls.caller_visitors(store, CALLER, 2) == {"v5"}
    assert await calls.caller_visitors(store, "+14155550999") == frozenset()
    assert await calls.caller_visitors(store, "") == frozenset()


async def test_agents_endpoints(store: Any) -> None:
    await store.write(
        [
            Write(
                "INSERT INTO staff_users (user_id, email, name, role, sites, password_hash,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user, f"{user}@example.com", user, "agent", '["demo"]', "x", STAMP),
            )
            for user in ("u1", "u2")
        ]
    )
    await agents.set_endpoints(store, "u1", ["PJSIP/b", "PJSIP/a"])
    await agents.set_endpoints(store, "u2", ["PJSIP/a"])
    await agents.set_endpoints(store, "u1", ["PJSIP/c", "PJSIP/a"])  # replaces u1's
    assert await agents.endpoints_of(store, "u1") == {"PJSIP/a", "PJSIP/c"}
    assert await agents.endpoints_by_user(store) == {
        "u1": ["PJSIP/a", "PJSIP/c"],
        "u2": ["PJSIP/a"],
    }
    assert await agents.endpoints_of(store, "u3") == frozenset()


async def _contact_with_a_lead(store: Any) -> None:
    await store.write(_other_site())
    for n, site in enumerate(("demo", "demo", "other")):
        call = _call(f"c{n}", n, site=site)
        await store.write([calls.call_write(call), contacts.contact_call_write(call)])
    writes = [crm.lead_write("demo", "k1")]
    writes.append(
        Write(
            "UPDATE leads SET status = ?, tags = ?, spam = 1 WHERE site = ? AND contact_id = ?",
            ("contacted", '["vip"]', "demo", "k1"),
            rank=90,  # after the lead's insert
        )
    )
    # 7 open tasks (due in reverse order of their ids), one closed, one on the other site.
    for n in range(7):
        due = ts(T0 + timedelta(hours=10 - n))
        writes.append(
            Write(
                "INSERT INTO tasks (task_id, site, contact_id, call_id, due_at, created_at,"
                " assignee, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (f"t{n}", "demo", "k1", "c1", due, STAMP, "u1" if n == 6 else "", None),
            )
        )
    writes += [
        Write(
            "INSERT INTO tasks (task_id, site, contact_id, call_id, due_at, created_at,"
            " closed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (task_id, site, "k1", "c1", ts(T0), STAMP, closed),
        )
        for task_id, site, closed in (("t-closed", "demo", STAMP), ("t-other", "other", None))
    ]
    for n in range(7):
        entry = HistoryEntry("system", "note", "", f"n{n}", T0 + timedelta(minutes=n))
        writes.append(crm.history_write("demo", "k1", entry))
    await store.write(writes)


async def test_the_contact_card_of_a_pop(store: Any) -> None:
    assert await agents.contact_card(store, "demo", "k0", CALLER) is None
    await _contact_with_a_lead(store)
    card = await agents.contact_card(store, "demo", "k1", CALLER)
    assert card is not None
    assert (card["contact_id"], card["calls"], card["first_call_at"]) == ("k1", 2, ts(T0))
    assert (card["status"], card["tags"], card["spam"]) == ("contacted", ["vip"], True)
    assert [t["task_id"] for t in card["open_tasks"]] == ["t6", "t5", "t4", "t3", "t2"]
    assert card["open_tasks"][0] == {
        "task_id": "t6",
        "due_at": ts(T0 + timedelta(hours=4)),
        "call_id": "c1",
        "assignee": "u1",
    }
    assert [h["after"] for h in card["history"]] == ["n6", "n5", "n4", "n3", "n2"]
    assert card["history"][0] == {
        "at": ts(T0 + timedelta(minutes=6)),
        "who": "system",
        "what": "note",
        "before": "",
        "after": "n6",
    }
    # The other site: its own call and task, no lead row (a lead never touched is `new`).
    other = await agents.contact_card(store, "other", "k1", CALLER)
    assert other is not None and (other["calls"], other["status"], other["history"]) == (
        1,
        "new",
        [],
    )
    assert [t["task_id"] for t in other["open_tasks"]] == ["t-other"]
    nobody = await agents.contact_card(store, "demo", "k1", "")
    assert nobody is not None and (nobody["calls"], nobody["first_call_at"]) == (0, None)


async def test_a_pop_without_the_crm_tables_shows_the_contact(store: Any) -> None:
    await _contact_with_a_lead(store)
    await store.write([Write("DROP TABLE tasks", ())])
    card = await agents.contact_card(store, "demo", "k1", CALLER)
    assert card is not None and card["calls"] == 2
    assert "status" not in card and "open_tasks" not in card
