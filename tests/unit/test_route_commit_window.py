"""The route on SQLite when the FastAGI deadline passes while the call's record is being
committed (a slow commit: the disk, or a loop held up): Asterisk gets no route and dials the
fallback, so once the commit lands the record says `fallback`, counted and logged late once.
And the record's correction never undoes what AMI saw Asterisk dial."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.leasing.site_book import SiteBook
from gateway.metrics import Metrics
from gateway.store.calls import call_fallback_write, call_progress_write
from gateway.store.database import Database
from gateway.store.sites import seed_sites
from gateway.telephony.agi import AgiRequest
from gateway.telephony.route import FALLBACK_ROUTE, CallRouter
from tests.api.conftest import demo_config
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)

SETTLE_S = 30.0
STATIC = "+14155550150"  # the demo site's static number (billboard): routed to PJSIP/agent1


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[CallRouter]:
    """The call router of a gateway on SQLite serving the demo site."""
    clock = FakeClock()
    config = parse_config(demo_config(tmp_path), source="test")
    db = await Database.open(config.store.url)
    try:
        await seed_sites(db, config, clock.now())
        book = SiteBook(db, clock)
        await book.reload()
        yield CallRouter(db, book, clock, Metrics(), "US")
    finally:
        await db.close()


def call(linkedid: str) -> AgiRequest:
    return AgiRequest(STATIC, "+12025550100", "Ann", linkedid, linkedid, "PJSIP/x", {})


async def route_of(db: Database, linkedid: str, until: Callable[[Any], bool]) -> Any:
    """The call's stored route once `until` holds for it, or as it is after SETTLE_S."""
    route = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE_S):
            while True:
                row = await db.fetchone("SELECT route FROM calls WHERE linkedid = ?", (linkedid,))
                route = None if row is None else row["route"]
                if row is not None and until(route):
                    break
                await asyncio.sleep(0.02)
    return route


async def test_a_deadline_passing_during_a_slow_commit_leaves_the_record_as_the_fallback(
    router: CallRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit of the call's record takes longer than the caller's deadline has left (it
    blocks the loop, as a slow SQLite commit does): the caller is cut (Asterisk dials the
    fallback), and the record says `fallback`, counted and logged late once."""
    db: Any = router.db
    commit = db._commit

    def slow(writes: Any) -> None:
        time.sleep(0.3)  # the slow disk: past the deadline below
        commit(writes)

    monkeypatch.setattr(db, "_commit", slow)
    with capture_logs() as logs:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):  # the AGI deadline, as the AGI server applies it
                await router.decide(call("48.0"))
        monkeypatch.setattr(db, "_commit", commit)
        assert await route_of(db, "48.0", lambda route: route != "PJSIP/agent1") == FALLBACK_ROUTE
        await db.drain()
    assert router.metrics.value("ctgw_calls_routed_late_total", site="demo") == 1
    assert router.metrics.value("ctgw_calls_total", site="demo", kind="static") == 1
    late = [(e["late"], e["route"]) for e in logs if e["event"] == "call_routed_late"]
    assert late == [("agi_deadline_in_commit", FALLBACK_ROUTE)]
    assert not [e for e in logs if e["event"] in ("call_routed", "call_route_failed")]


async def test_a_call_routed_in_time_keeps_its_route(router: CallRouter) -> None:
    async with asyncio.timeout(SETTLE_S):
        decision = await router.decide(call("49.0"))
    assert decision is not None and decision.route == "PJSIP/agent1"
    assert await route_of(router.db, "49.0", lambda _: True) == "PJSIP/agent1"
    assert router.metrics.value("ctgw_calls_routed_late_total", site="demo") == 0


@pytest.mark.parametrize("ami_first", [True, False])
async def test_the_fallback_correction_never_undoes_amis_route(
    router: CallRouter, ami_first: bool
) -> None:
    """AMI's route (the dial string Asterisk really dialed, from DialBegin) is kept whether it
    lands before or after the record is set to the fallback."""
    decision = await router.decide(call("50.0"))
    assert decision is not None
    ami = call_progress_write(
        "50.0",
        "ringing",
        agent="",
        answered_at=None,
        ended_at=None,
        ring_seconds=None,
        talk_seconds=None,
        recording="",
        hangup_cause="",
        route="PJSIP/frontdesk",
    )
    fallback = call_fallback_write(decision.call_id, decision.route, FALLBACK_ROUTE)
    for write in [ami, fallback] if ami_first else [fallback, ami]:
        await router.db.write([write])
    assert await route_of(router.db, "50.0", lambda _: True) == "PJSIP/frontdesk"
