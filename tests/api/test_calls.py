"""GET /v1/calls, /v1/calls/{id} and /v1/calls.csv over call rows written as literal SQL."""

from __future__ import annotations

import csv
import io
import json
import random

from gateway.appkeys import DB
from gateway.store.database import Write

STATES = ("answered", "missed", "abandoned", "ringing")


async def seed_calls(client, count: int = 40) -> list[dict]:
    rng = random.Random(42)
    rows = []
    for i in range(count):
        state = STATES[i % 4]
        attribution = {
            "source": rng.choice(["google", "facebook", "(direct)"]),
            "medium": "cpc",
            "campaign": f"c{i % 3}",
            "gclid": f"G{i}",
            "landing_page": "https://x/",
        }
        rows.append(
            {
                "call_id": f"call{i:03d}",
                "site": "demo" if i % 5 else "other",
                "dialed": "+14155550101",
                "caller": f"+1202555{i:04d}",
                "caller_name": '=HYPERLINK("evil")'
                if i == 7
                else f"Caller {i}" + (" José Müller" if i == 11 else ""),
                "started_at": f"2026-01-{1 + i // 4:02d}T10:{i % 60:02d}:00.000000Z",
                "state": state,
                "attribution": json.dumps(attribution),
            }
        )
    await client.app[DB].write(
        [
            Write(
                "INSERT INTO calls (call_id, site, dialed, caller, caller_name, started_at, state,"
                " attribution_kind, session_id, attribution, agent, ring_seconds, talk_seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'active', 's1', ?, 'agent1', 4.5, 61.0)",
                (
                    r["call_id"],
                    r["site"],
                    r["dialed"],
                    r["caller"],
                    r["caller_name"],
                    r["started_at"],
                    r["state"],
                    r["attribution"],
                ),
            )
            for r in rows
        ]
    )
    return rows


async def test_calls_newest_first_with_filters(client, admin_key) -> None:
    """Calls come newest first and filter by time range, site and state."""
    await seed_calls(client)
    auth = {"Authorization": f"Bearer {admin_key}"}
    body = await (await client.get("/v1/calls", headers=auth)).json()
    started = [c["started_at"] for c in body["calls"]]
    assert started == sorted(started, reverse=True) and len(started) == 40
    answered = await (await client.get("/v1/calls?state=answered&site=demo", headers=auth)).json()
    assert answered["calls"] and all(
        c["state"] == "answered" and c["site"] == "demo" for c in answered["calls"]
    )
    window = await (
        await client.get(
            "/v1/calls?since=2026-01-03T00:00:00Z&until=2026-01-04T00:00:00Z", headers=auth
        )
    ).json()
    assert [c["call_id"] for c in window["calls"]] == ["call011", "call010", "call009", "call008"]


async def test_call_has_contract_fields(client, admin_key) -> None:
    """A call carries every field the contract names, with attribution nested."""
    await seed_calls(client)
    auth = {"Authorization": f"Bearer {admin_key}"}
    call = await (await client.get("/v1/calls/call001", headers=auth)).json()
    for field in (
        "call_id",
        "site",
        "dialed",
        "caller",
        "caller_name",
        "started_at",
        "state",
        "agent",
        "ring_seconds",
        "talk_seconds",
        "recording",
        "first_time",
    ):
        assert field in call
    assert set(call["attribution"]) >= {
        "kind",
        "session_id",
        "visitor_id",
        "source",
        "medium",
        "campaign",
        "term",
        "content",
        "gclid",
        "landing_page",
        "referrer",
    }
    assert call["attribution"]["kind"] == "active" and call["attribution"]["gclid"] == "G1"
    missing = await client.get("/v1/calls/nope", headers=auth)
    assert missing.status == 404


async def test_bad_call_filters_are_400(client, admin_key) -> None:
    """Unknown states, bad times and bad limits are named in a 400."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    for query in ("state=lost", "since=yesterday", "limit=0", "limit=x"):
        resp = await client.get(f"/v1/calls?{query}", headers=auth)
        assert resp.status == 400, query
        assert (await resp.json())["error"]["code"] == "invalid_parameter"


async def test_calls_csv_download_defuses_formulas(client, admin_key) -> None:
    """The CSV has a header, one row per call, and no cell a spreadsheet would run."""
    await seed_calls(client)
    resp = await client.get(
        "/v1/calls.csv?site=demo", headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 byte order mark, for Excel"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 32
    by_id = {r["call_id"]: r for r in rows}
    assert by_id["call007"]["caller_name"] == '\'=HYPERLINK("evil")'
    assert by_id["call001"]["caller"] == "+12025550001"
    assert by_id["call001"]["caller_display"] == "(202) 555-0001"
    assert by_id["call001"]["dialed_display"] == "(415) 555-0101"
    assert by_id["call011"]["caller_name"] == "Caller 11 José Müller"
    assert by_id["call001"]["attribution_gclid"] == "G1"
