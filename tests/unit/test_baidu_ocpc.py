"""The Baidu OCPC upload against a real local HTTP receiver and a real store: the request's
shape, batches under the documented limit, retries (HTTP errors, status 4, timeouts, a closed
connection) and that each conversion is accepted, and marked sent, exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from gateway.conversion_settings import BaiduOcpcSettings, ConversionSettings
from gateway.store.conversions import list_conversions
from gateway.store.database import Database, Write
from gateway.store.times import ts
from gateway.webhooks.baidu_ocpc import ACCEPTED, REJECTED, RETRY, TOKEN, BaiduItem, BaiduOcpcClient
from gateway.webhooks.conversion_sending import send_baidu

pytestmark = pytest.mark.timeout(60)

TOKEN_TEXT = "s3cret-Token@abc"
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
OK = {"header": {"desc": "success", "status": 0}}


class Receiver:
    """A local upload endpoint that answers from a script, then with success."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.accepted: list[str] = []  # logidUrls answered with status 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.content_types.append(request.headers.get("Content-Type", ""))
        body = json.loads(raw)
        self.bodies.append(body)
        step = self.script.pop(0) if self.script else "ok"
        if step == "500":
            return web.Response(status=500, text="busy")
        if step == "redirect":
            raise web.HTTPFound("/elsewhere")
        if step == "timeout":
            await asyncio.sleep(2)
        if step == "close":
            response = web.StreamResponse(headers={"Content-Length": "500"})
            await response.prepare(request)
            await response.write(b'{"header": ')
            assert request.transport is not None
            request.transport.close()
            return response
        if step.startswith("status"):
            status = int(step.removeprefix("status"))
            echo = {"header": {"status": status, "desc": f"token {body['token']} refused"}}
            return web.json_response(echo)
        self.accepted += [c["logidUrl"] for c in body["conversionTypes"]]
        return web.json_response(OK)


@pytest.fixture
async def receiver(aiohttp_server) -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/ocpcapi/api/uploadConvertData", got.handle)
    server = await aiohttp_server(app)
    yield got, str(server.make_url("/ocpcapi/api/uploadConvertData"))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    store = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    yield store
    await store.close()


async def _no_wait(_: float) -> None:
    return None


def _client(session: aiohttp.ClientSession, url: str) -> BaiduOcpcClient:
    return BaiduOcpcClient(
        session, url, TOKEN_TEXT, timeout_seconds=0.5, attempts=3, sleep=_no_wait
    )


def _settings(batch_size: int = 99) -> ConversionSettings:
    baidu = BaiduOcpcSettings(enabled=True, new_type=30, batch_size=batch_size)
    return ConversionSettings(min_talk_seconds=10, baidu_ocpc=baidu)


async def _add_calls(db: Database, count: int, *, talk: float = 60.0, start: int = 0) -> None:
    writes = []
    for n in range(start, start + count):
        began = NOW - timedelta(hours=1, seconds=n)
        url = f"https://www.example.cn/land?utm_source=baidu&bd_vid=vid{n}"
        session = {
            "session_id": f"s{n}",
            "site": "demo",
            "visitor_id": f"v{n}",
            "created_at": ts(began),
            "last_seen": ts(began),
            "expires_at": ts(began),
            "url": url,
            "landing_page": "https://www.example.cn/land",
            "bd_vid": f"vid{n}",
        }
        call = {
            "call_id": f"c{n:04d}",
            "site": "demo",
            "dialed": "+14155550101",
            "caller": "+12025550001",
            "started_at": ts(began),
            "answered_at": ts(began),
            "ended_at": ts(began + timedelta(minutes=2)),
            "state": "answered",
            "talk_seconds": talk,
            "attribution_kind": "active",
            "session_id": f"s{n}",
        }
        for table, row in (("sessions", session), ("calls", call)):
            names, marks = ", ".join(row), ", ".join("?" for _ in row)
            writes.append(
                Write(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))
            )
    await db.write(writes)


async def test_one_batch_has_the_documented_request_shape(receiver) -> None:
    got, url = receiver
    async with aiohttp.ClientSession() as session:
        answer = await _client(session, url).upload(
            [BaiduItem("https://www.example.cn/land?bd_vid=1", 30)]
        )
    assert answer.outcome == ACCEPTED and answer.status == 0
    assert got.bodies == [
        {
            "token": TOKEN_TEXT,
            "conversionTypes": [
                {"logidUrl": "https://www.example.cn/land?bd_vid=1", "newType": 30}
            ],
        }
    ]
    assert got.content_types[0].startswith("application/json")


async def test_a_batch_over_the_limit_is_refused_before_sending(receiver) -> None:
    _, url = receiver
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="1-99"):
            await _client(session, url).upload([BaiduItem("u", 1)] * 100)


@pytest.mark.parametrize("failure", ["500", "status4", "status5", "timeout", "close", "redirect"])
async def test_a_failure_worth_retrying_is_retried_then_succeeds(receiver, failure: str) -> None:
    got, url = receiver
    got.script = [failure, failure]
    async with aiohttp.ClientSession() as session:
        answer = await _client(session, url).upload([BaiduItem("https://x.cn/?bd_vid=1", 3)])
    assert answer.outcome == ACCEPTED
    assert len(got.bodies) == 3 and got.bodies[0] == got.bodies[2]


@pytest.mark.parametrize(("status", "outcome"), [(1, REJECTED), (2, REJECTED), (3, TOKEN)])
async def test_refusals_are_not_retried(receiver, status: int, outcome: str) -> None:
    got, url = receiver
    got.script = [f"status{status}"]
    async with aiohttp.ClientSession() as session:
        answer = await _client(session, url).upload([BaiduItem("https://x.cn/?bd_vid=1", 3)])
    assert (answer.outcome, answer.status) == (outcome, status)
    assert len(got.bodies) == 1
    # The answer echoed the token: it is masked before anyone keeps it.
    assert TOKEN_TEXT not in answer.text and "***" in answer.text


async def test_calls_go_out_in_batches_under_the_limit_each_once(receiver, db) -> None:
    got, url = receiver
    await _add_calls(db, 150)
    await _add_calls(db, 3, talk=5.0, start=500)  # too short for the rule: never sent
    async with aiohttp.ClientSession() as session:
        client = _client(session, url)
        report = await send_baidu(db, "demo", _settings(), client, NOW)
        again = await send_baidu(db, "demo", _settings(), client, NOW + timedelta(minutes=5))
    assert (report.sent, report.retry) == (150, 0)
    assert [len(b["conversionTypes"]) for b in got.bodies] == [99, 51]
    assert all(c["newType"] == 30 for b in got.bodies for c in b["conversionTypes"])
    assert sorted(got.accepted) == sorted(
        f"https://www.example.cn/land?utm_source=baidu&bd_vid=vid{n}" for n in range(150)
    )
    assert again.sent == 0 and len(got.bodies) == 2
    rows = await list_conversions(db, "demo", platform="baidu_ocpc", limit=1000)
    assert len(rows) == 150 and {r["state"] for r in rows} == {"sent"}
    assert {r["sent_at"] for r in rows} == {ts(NOW)}
    assert all(r["attempts"] == 1 and '"status": 0' in r["answer"] for r in rows)


async def test_a_batch_that_keeps_failing_is_retried_on_a_later_run_exactly_once(
    receiver, db
) -> None:
    got, url = receiver
    await _add_calls(db, 2)
    got.script = ["500", "status4", "timeout"]  # every attempt of the first run fails
    with capture_logs() as logs:
        async with aiohttp.ClientSession() as session:
            client = _client(session, url)
            first = await send_baidu(db, "demo", _settings(), client, NOW)
            rows = await list_conversions(db, "demo", state="retry")
            due = datetime.fromisoformat(rows[0]["next_attempt_at"].replace("Z", "+00:00"))
            early = await send_baidu(db, "demo", _settings(), client, due - timedelta(seconds=1))
            late = await send_baidu(db, "demo", _settings(), client, due)
            after = await send_baidu(db, "demo", _settings(), client, due + timedelta(hours=1))
    assert first.retry == 2 and len(rows) == 2 and rows[0]["attempts"] == 1
    assert timedelta(minutes=1) <= due - NOW <= timedelta(minutes=1.2)
    assert early.sent == 0 and late.sent == 2 and after.sent == 0
    assert sorted(got.accepted) == sorted(
        f"https://www.example.cn/land?utm_source=baidu&bd_vid=vid{n}" for n in range(2)
    )
    stored = await list_conversions(db, "demo")
    assert {r["state"] for r in stored} == {"sent"} and {r["attempts"] for r in stored} == {2}
    assert TOKEN_TEXT not in json.dumps(logs, default=str)


async def test_a_refused_token_stops_the_run_and_keeps_the_calls_for_later(receiver, db) -> None:
    got, url = receiver
    await _add_calls(db, 5)
    got.script = ["status3"]
    async with aiohttp.ClientSession() as session:
        report = await send_baidu(db, "demo", _settings(batch_size=2), _client(session, url), NOW)
    assert report.retry == 2 and report.sent == 0 and len(got.bodies) == 1
    stored = await list_conversions(db, "demo")
    assert all(TOKEN_TEXT not in r["answer"] for r in stored)
    # The first batch waits for a retry; the two batches never sent wait for the lease.
    assert sorted(r["state"] for r in stored) == ["retry", "retry", "sending", "sending", "sending"]
    async with aiohttp.ClientSession() as session:
        later = await send_baidu(
            db, "demo", _settings(batch_size=2), _client(session, url), NOW + timedelta(hours=1)
        )
    assert later.sent == 5 and len(set(got.accepted)) == 5 == len(got.accepted)


async def test_rejected_data_is_kept_with_the_answer_and_not_sent_again(receiver, db) -> None:
    got, url = receiver
    await _add_calls(db, 1)
    got.script = ["status2"]
    async with aiohttp.ClientSession() as session:
        client = _client(session, url)
        report = await send_baidu(db, "demo", _settings(), client, NOW)
        again = await send_baidu(db, "demo", _settings(), client, NOW + timedelta(days=1))
    assert report.rejected == 1 and again.rejected == again.sent == 0 and len(got.bodies) == 1
    (row,) = await list_conversions(db, "demo")
    assert row["state"] == "rejected" and '"status": 2' in row["answer"]


def test_outcome_names_are_the_ones_the_store_knows() -> None:
    assert {ACCEPTED, RETRY, REJECTED, TOKEN} == {"accepted", "retry", "rejected", "token"}
