"""No conversion lost to Google Ads' "too recent" refusal: a new-only file holds a call only
once it is old enough (calls 12 h, clicks 6 h, Microsoft clicks 1 h, from the call's start),
leaves it unrecorded until then, and a later new-only file holds it exactly once; a period
file holds it and says so. Through the admin API (the app's clock) and the daemon's daily
files."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import CONFIG, DB
from gateway.config import parse_config
from gateway.store.conversions import list_conversions
from gateway.store.database import Write
from gateway.store.keys import create_key
from gateway.store.times import ts
from gateway.webhooks.conversion_worker import write_daily_files
from tests.api.test_conversions_api import NOW, _raw
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(90)

CALLS = "/v1/conversions/google-ads-calls.csv?site=demo"
CLICKS = "/v1/conversions/google-ads.csv?site=demo"
NEW_YORK = ZoneInfo("America/New_York")


def _call(n: int, began: datetime, **ids: str) -> list[Write]:
    """A visit and the 2-minute answered call it led to, begun at `began`."""
    session = {
        "session_id": f"s{n}",
        "site": "demo",
        "visitor_id": f"v{n}",
        "created_at": ts(began),
        "last_seen": ts(began),
        "expires_at": ts(began),
        "url": "https://www.demo-plumbing.example/?" + "&".join(f"{k}={v}" for k, v in ids.items()),
        "landing_page": "https://www.demo-plumbing.example/",
        **ids,
    }
    call = {
        "call_id": f"c{n}",
        "site": "demo",
        "dialed": "+14155550101",
        "caller": f"+1202555{n:04d}",
        "started_at": ts(began),
        "answered_at": ts(began + timedelta(seconds=5)),
        "ended_at": ts(began + timedelta(seconds=125)),
        "state": "answered",
        "talk_seconds": 120.0,
        "attribution_kind": "active",
        "session_id": f"s{n}",
    }
    return [
        Write(
            f"INSERT INTO {t} ({', '.join(r)}) VALUES ({', '.join('?' for _ in r)})",
            tuple(r.values()),
        )
        for t, r in (("sessions", session), ("calls", call))
    ]


@pytest.fixture
async def api(aiohttp_client, tmp_path: Path) -> tuple[TestClient, FakeClock, dict[str, str]]:
    clock = FakeClock(NOW)
    client = await aiohttp_client(create_app(parse_config(_raw(tmp_path)), clock=clock))
    await client.app[DB].write(
        [
            *_call(1, NOW - timedelta(hours=11), gclid="RECENT1"),  # 11 h old
            *_call(2, NOW - timedelta(hours=30), gclid="OLD2"),  # old enough for both
        ]
    )
    key = await create_key(client.app[DB], "test", NOW)
    return client, clock, {"Authorization": f"Bearer {key}"}


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))[2:]


async def _sent(client: TestClient, platform: str) -> list[tuple[str, str]]:
    rows = await list_conversions(client.app[DB], "demo", platform=platform)
    return sorted((r["call_id"], r["answer"]) for r in rows)


async def test_a_call_11_hours_old_waits_for_the_first_new_only_file_after_12(api) -> None:
    client, clock, auth = api
    first = await client.get(f"{CALLS}&new_only=true", headers=auth)
    assert first.status == 200, await first.text()
    assert [r[0] for r in _rows(await first.text())] == ["+12025550002"]
    assert first.headers["X-Conversion-Count"] == "1"
    assert first.headers["X-Conversion-Held-Back"] == "1"
    assert first.headers["X-Conversion-Too-Recent"] == "0"
    name = first.headers["Content-Disposition"].split('"')[1]
    # Not marked sent: only the call the file holds is.
    assert await _sent(client, "google_ads_calls") == [("c2", name)]

    clock.advance(minutes=59)  # 11 h 59 min: still too recent
    early = await client.get(f"{CALLS}&new_only=true", headers=auth)
    assert _rows(await early.text()) == [] and early.headers["X-Conversion-Held-Back"] == "1"

    clock.advance(minutes=1)  # 12 h since the call began
    later = await client.get(f"{CALLS}&new_only=true", headers=auth)
    assert [r[0] for r in _rows(await later.text())] == ["+12025550001"]
    assert later.headers["X-Conversion-Held-Back"] == "0"
    later_name = later.headers["Content-Disposition"].split('"')[1]
    assert await _sent(client, "google_ads_calls") == [("c1", later_name), ("c2", name)]

    clock.advance(hours=24)
    again = await client.get(f"{CALLS}&new_only=true", headers=auth)
    assert _rows(await again.text()) == [] and again.headers["X-Conversion-Count"] == "0"


async def test_click_conversions_wait_6_hours(api) -> None:
    client, clock, auth = api
    clock.advance(hours=-6)  # the gclid call is 5 h old
    first = await client.get(f"{CLICKS}&new_only=true", headers=auth)
    assert [r[0] for r in _rows(await first.text())] == ["OLD2"]
    assert first.headers["X-Conversion-Held-Back"] == "1"
    clock.advance(hours=1)
    later = await client.get(f"{CLICKS}&new_only=true", headers=auth)
    assert [r[0] for r in _rows(await later.text())] == ["RECENT1"]
    assert [c for c, _ in await _sent(client, "google_ads")] == ["c1", "c2"]


async def test_a_period_file_holds_a_recent_call_and_says_so(api) -> None:
    client, _, auth = api
    resp = await client.get(CALLS, headers=auth)
    assert sorted(r[0] for r in _rows(await resp.text())) == ["+12025550001", "+12025550002"]
    assert resp.headers["X-Conversion-Too-Recent"] == "1"
    assert resp.headers["X-Conversion-Held-Back"] == "0"
    assert await _sent(client, "google_ads_calls") == []
    # No Microsoft click in this period: nothing too recent there.
    ms = await client.get("/v1/conversions/microsoft-ads.csv?site=demo", headers=auth)
    assert ms.headers["X-Conversion-Too-Recent"] == "0"


async def test_microsoft_conversions_wait_an_hour_after_the_click(api) -> None:
    """Microsoft's advice: "after an ad click you should wait an hour before uploading"."""
    client, clock, auth = api
    await client.app[DB].write(_call(3, NOW - timedelta(minutes=30), msclkid="MSRECENT3"))
    await client.app[DB].write(_call(4, NOW - timedelta(hours=2), msclkid="MSOLD4"))
    url = "/v1/conversions/microsoft-ads.csv?site=demo&new_only=true"
    first = await client.get(url, headers=auth)
    assert first.status == 200, await first.text()
    assert [r[-1] for r in _rows(await first.text())] == ["MSOLD4"]
    assert first.headers["X-Conversion-Held-Back"] == "1"
    clock.advance(minutes=29)  # 59 min after the call began: still held back
    early = await client.get(url, headers=auth)
    assert _rows(await early.text()) == [] and early.headers["X-Conversion-Held-Back"] == "1"
    clock.advance(minutes=1)
    later = await client.get(url, headers=auth)
    assert [r[-1] for r in _rows(await later.text())] == ["MSRECENT3"]
    assert [c for c, _ in await _sent(client, "microsoft_ads")] == ["c3", "c4"]


async def test_the_daily_file_after_midnight_holds_late_calls_the_next_day(
    aiohttp_client, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    raw = _raw(tmp_path, export_dir=str(folder))
    client = await aiohttp_client(create_app(parse_config(raw), clock=FakeClock(NOW)))
    late = datetime(2026, 3, 9, 23, 0, tzinfo=NEW_YORK)  # late yesterday, local time
    await client.app[DB].write(_call(7, late, gclid="LATE7"))
    config = client.app[CONFIG]
    entry = config.sites[0]

    async def daily(day: date) -> dict[str, str]:
        # The worker's file of `day` is made at 00:15 local the day after.
        made = datetime.combine(day + timedelta(days=1), datetime.min.time(), NEW_YORK)
        at = made + timedelta(minutes=15)
        paths = await write_daily_files(client.app[DB], config, entry, "America/New_York", day, at)
        return {p.name.split("_")[2]: p.read_text() for p in paths}

    first = await daily(date(2026, 3, 9))
    assert _rows(first["google-ads-calls"]) == [] and _rows(first["google-ads"]) == []
    assert await list_conversions(client.app[DB], "demo") == []
    second = await daily(date(2026, 3, 10))
    assert [r[0] for r in _rows(second["google-ads-calls"])] == ["+12025550007"]
    assert [r[0] for r in _rows(second["google-ads"])] == ["LATE7"]
    third = await daily(date(2026, 3, 11))
    assert _rows(third["google-ads-calls"]) == [] and _rows(third["google-ads"]) == []
    states = {
        (r["call_id"], r["platform"], r["state"])
        for r in await list_conversions(client.app[DB], "demo")
    }
    assert states == {("c7", "google_ads_calls", "sent"), ("c7", "google_ads", "sent")}
