"""A call's direction in the admin API: `inbound` for calls to a tracked line, `outbound` for
click-to-call's, in the list, the one call and the CSV download."""

from __future__ import annotations

import csv
import io

from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.store.calls import call_write, outbound_call_writes
from numberpool.calls import CallAttribution, CallRecord

INBOUND = CallRecord(
    call_id="in1",
    site="demo",
    dialed="+14155550150",
    started_at="2026-01-05T09:00:00.000000Z",
    state="answered",
    attribution=CallAttribution("static", source="billboard"),
    caller="+12025550100",
)
OUTBOUND = CallRecord(
    call_id="out1",
    site="demo",
    dialed="+14155550100",
    started_at="2026-01-05T10:00:00.000000Z",
    state="ringing",
    attribution=CallAttribution("outbound"),
    caller="+12025550100",
    agent="PJSIP/agent1",
    first_time=False,
)


async def stored(client: TestClient) -> None:
    await client.app[DB].write([call_write(INBOUND), *outbound_call_writes(OUTBOUND)])


async def test_list_and_one_call_show_the_direction(client: TestClient, admin_key: str) -> None:
    await stored(client)
    auth = {"Authorization": f"Bearer {admin_key}"}
    listed = await (await client.get("/v1/calls", headers=auth)).json()
    assert {c["call_id"]: c["direction"] for c in listed["calls"]} == {
        "in1": "inbound",
        "out1": "outbound",
    }
    for call_id, direction in (("in1", "inbound"), ("out1", "outbound")):
        resp = await client.get(f"/v1/calls/{call_id}", headers=auth)
        assert resp.status == 200
        assert (await resp.json())["direction"] == direction


async def test_the_download_has_a_direction_column_last(client: TestClient, admin_key: str) -> None:
    """Last, so the columns before it keep their places for existing imports."""
    await stored(client)
    resp = await client.get("/v1/calls.csv", headers={"Authorization": f"Bearer {admin_key}"})
    assert resp.status == 200
    rows = list(csv.reader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    assert rows[0][-1] == "direction"
    assert {row[0]: row[-1] for row in rows[1:]} == {"in1": "inbound", "out1": "outbound"}
