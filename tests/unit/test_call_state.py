"""One rule names how an unanswered call ended, wherever a call is closed: by AMI's events
(the tracker) or by a resync after the call ended unseen (the ledger)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.metrics import Metrics
from gateway.store.calls import call_write, open_calls
from gateway.store.database import Database
from gateway.store.times import ts
from gateway.telephony.ami_protocol import AmiMessage
from gateway.telephony.call_follower import CallsResynced
from gateway.telephony.call_ledger import CallLedger
from gateway.telephony.call_lifecycle import CallTracker
from numberpool.calls import ABANDON_SECONDS, CallAttribution, CallRecord, unanswered_state

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
JUST_UNDER = ABANDON_SECONDS - 0.001


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


def test_unanswered_calls_under_the_limit_are_abandoned_the_rest_missed() -> None:
    assert ABANDON_SECONDS == 15.0  # README.md, "Call records"
    assert unanswered_state(0.0) == "abandoned"
    assert unanswered_state(JUST_UNDER) == "abandoned"
    assert unanswered_state(ABANDON_SECONDS) == "missed"
    assert unanswered_state(600.0) == "missed"
    assert unanswered_state(5.0, abandon_seconds=4.0) == "missed"


@pytest.mark.parametrize("seconds", [0.5, JUST_UNDER, ABANDON_SECONDS, 40.0])
def test_the_tracker_closes_an_unanswered_call_by_the_rule(seconds: float) -> None:
    clock = Clock()
    tracker = CallTracker(clock)
    channel = {"Channel": "PJSIP/trunk-1", "Context": "in", "Uniqueid": "7.1", "Linkedid": "7.1"}
    tracker.handle(AmiMessage((("Event", "Newchannel"), *channel.items())))
    clock.at = T0 + timedelta(seconds=seconds)
    [final] = tracker.handle(AmiMessage((("Event", "Hangup"), *channel.items())))
    assert final.final and final.state == unanswered_state(seconds)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    store = await Database.open(f"sqlite:///{tmp_path / 'calls.db'}")
    yield store
    await store.close()


def ringing(call_id: str, started: datetime, answered: bool = False) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        site="demo",
        dialed="+14155550150",
        started_at=ts(started),
        state="ringing",
        attribution=CallAttribution("static", source="billboard"),
        linkedid=f"L{call_id}",
        answered_at=ts(started) if answered else None,
    )


async def test_a_resync_closes_unseen_calls_by_the_same_rule(db: Database) -> None:
    at = T0 + timedelta(minutes=5)
    ages = {"young": 0.5, "edge": JUST_UNDER, "limit": ABANDON_SECONDS, "old": 40.0}
    calls = [ringing(name, at - timedelta(seconds=age)) for name, age in ages.items()]
    calls.append(ringing("talking", at - timedelta(seconds=3), answered=True))
    await db.write([call_write(call) for call in calls])
    await CallLedger(db, Metrics()).calls_resynced(CallsResynced(frozenset(), at))
    rows = await db.fetchall("SELECT call_id, state, ended_at, hangup_cause FROM calls")
    states = {row["call_id"]: row["state"] for row in rows}
    assert states == {
        **{name: unanswered_state(age) for name, age in ages.items()},
        "talking": "answered",
    }
    assert {(row["ended_at"], row["hangup_cause"]) for row in rows} == {
        (ts(at), "closed on resync")
    }
    assert await open_calls(db, at) == []
