"""The conversion routes and `ctgw conversions`: import files of a period's counted calls,
"new only" files that never repeat a call, the store's record of what was sent, and a Baidu
upload to a configured endpoint."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import parse_config
from gateway.store.database import Write
from gateway.store.keys import create_key
from gateway.store.times import ts
from tests.api.conftest import demo_config
from tests.api.test_staff_login import add_user, log_in
from tests.conftest import FakeClock
from tests.daemon.test_cli_users import ctgw

pytestmark = pytest.mark.timeout(90)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CONVERSIONS = {
    "min_talk_seconds": 30,
    "google_ads": {"name": "Qualified call", "value": "49.90", "currency": "USD"},
    "google_ads_calls": {"name": "Call from ads", "value": "20", "currency": "USD"},
    "microsoft_ads": {"name": "Phone lead", "value": "10", "currency": "EUR"},
}


def _raw(tmp_path: Path, **conversions: Any) -> dict[str, Any]:
    raw = demo_config(tmp_path)
    site = raw["sites"][0]
    site["timezone"] = "America/New_York"
    site["conversions"] = {**CONVERSIONS, **conversions}
    shop = {"key": "shop", "allowed_origins": ["https://shop.example"]}
    return {**raw, "sites": [site, shop]}


def _visit_and_call(n: int, talk: float, **ids: str) -> list[Write]:
    began = NOW - timedelta(days=1, minutes=n)
    query = "&".join(f"{k}={v}" for k, v in ids.items())
    session = {
        "session_id": f"s{n}",
        "site": "demo",
        "visitor_id": f"v{n}",
        "created_at": ts(began),
        "last_seen": ts(began),
        "expires_at": ts(began),
        "url": f"https://www.demo-plumbing.example/?{query}",
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
        "ended_at": ts(began + timedelta(seconds=5 + talk)),
        "state": "answered",
        "talk_seconds": talk,
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


async def _seed(client: TestClient) -> None:
    await client.app[DB].write(
        [
            *_visit_and_call(1, 120.0, gclid="GCLID1", msclkid="MS1"),
            *_visit_and_call(2, 45.0, gbraid="GBRAID2"),
            *_visit_and_call(3, 10.0, gclid="SHORT3"),  # under the site's 30 s: never counts
            *_visit_and_call(4, 60.0, wbraid="WBRAID4", bd_vid="BD4"),
        ]
    )


@pytest.fixture
async def api(aiohttp_client, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    clock = FakeClock(NOW)
    client = await aiohttp_client(create_app(parse_config(_raw(tmp_path)), clock=clock))
    await _seed(client)
    key = await create_key(client.app[DB], "test", datetime.now(UTC))
    return client, {"Authorization": f"Bearer {key}"}


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


async def test_the_google_ads_file_holds_the_counted_calls_with_a_gclid(api) -> None:
    client, auth = api
    resp = await client.get("/v1/conversions/google-ads.csv?site=demo", headers=auth)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv" and resp.headers["X-Conversion-Count"] == "1"
    assert (
        "conversions_demo_google-ads_2026-02-09_2026-03-10.csv"
        in resp.headers["Content-Disposition"]
    )
    rows = _csv(await resp.text())
    assert rows[0] == ["Parameters:TimeZone=America/New_York"]
    assert rows[2] == ["GCLID1", "Qualified call", "2026-03-09 08:01:05", "49.90", "USD"]
    assert len(rows) == 3


async def test_the_ios_click_ids_have_files_of_their_own(api) -> None:
    client, auth = api
    for kind, expected in (("gbraid", "GBRAID2"), ("wbraid", "WBRAID4")):
        resp = await client.get(f"/v1/conversions/google-ads.csv?click_id={kind}", headers=auth)
        assert resp.status == 400  # two sites: the key sees both, so site is required
        resp = await client.get(
            f"/v1/conversions/google-ads.csv?site=demo&click_id={kind}", headers=auth
        )
        rows = _csv(await resp.text())
        # The Google Click ID column stays (empty); the id goes in GBRAID or WBRAID.
        assert rows[1][:3] == ["Google Click ID", "GBRAID", "WBRAID"]
        column = rows[1].index(kind.upper())
        assert [r[column] for r in rows[2:]] == [expected]
        assert all(r[0] == "" for r in rows[2:])


async def test_call_and_microsoft_files(api) -> None:
    client, auth = api
    calls = _csv(
        await (
            await client.get("/v1/conversions/google-ads-calls.csv?site=demo", headers=auth)
        ).text()
    )
    assert [r[0] for r in calls[2:]] == ["+12025550004", "+12025550002", "+12025550001"]
    assert calls[2][1:] == [
        "2026-03-09 07:56:00",
        "Call from ads",
        "2026-03-09 07:57:05",
        "20",
        "USD",
    ]
    ms = _csv(
        await (await client.get("/v1/conversions/microsoft-ads.csv?site=demo", headers=auth)).text()
    )
    assert ms[2] == [
        *("Offline Conversion", "", "", "", "c1", "", "EUR", "Phone lead"),
        *("3/9/2026 12:01:05 PM", "10", "MS1"),
    ]


async def test_new_only_files_never_hold_a_call_twice_and_the_store_says_so(api) -> None:
    client, auth = api
    url = "/v1/conversions/google-ads.csv?site=demo&new_only=true"
    first = await client.get(url, headers=auth)
    assert first.headers["X-Conversion-Count"] == "1"
    name = first.headers["Content-Disposition"].split('"')[1]
    second = await client.get(url, headers=auth)
    assert second.headers["X-Conversion-Count"] == "0" and len(_csv(await second.text())) == 2
    # A file without new_only still holds every counted call, and records nothing.
    again = await client.get("/v1/conversions/google-ads.csv?site=demo", headers=auth)
    assert again.headers["X-Conversion-Count"] == "1"
    listed = await (await client.get("/v1/conversions?site=demo", headers=auth)).json()
    assert listed["conversions"] == [
        {
            "call_id": "c1",
            "platform": "google_ads",
            "site": "demo",
            "click_id": "GCLID1",
            "state": "sent",
            "attempts": 0,
            "claimed_at": ts(NOW),
            "sent_at": ts(NOW),
            "next_attempt_at": None,
            "answer": name,
        }
    ]


async def test_a_new_only_file_can_be_made_again_by_its_name(api) -> None:
    client, auth = api
    url = "/v1/conversions/google-ads.csv?site=demo&new_only=true"
    first = await client.get(url, headers=auth)
    name = first.headers["Content-Disposition"].split('"')[1]
    # Marked spam since: the file made again still holds what it held.
    await client.post("/v1/calls/c1/marks", json={"spam": True}, headers=auth)
    again = await client.get(f"/v1/conversions/google-ads.csv?site=demo&again={name}", headers=auth)
    assert await again.text() == await first.text()
    assert again.headers["Content-Disposition"] == first.headers["Content-Disposition"]
    listed = await (await client.get("/v1/conversions?site=demo", headers=auth)).json()
    assert len(listed["conversions"]) == 1
    unknown = await client.get("/v1/conversions/google-ads.csv?site=demo&again=x.csv", headers=auth)
    assert unknown.headers["X-Conversion-Count"] == "0"


@pytest.mark.parametrize(
    "query",
    [
        "/v1/conversions/google-ads.csv?site=demo&click_id=msclkid",
        "/v1/conversions/google-ads.csv?site=demo&new_only=maybe",
        "/v1/conversions/google-ads.csv?site=demo&since=2026-03-10&until=2026-03-01",
        "/v1/conversions/microsoft-ads.csv?site=demo&since=yesterday",
        "/v1/conversions?site=demo&platform=facebook",
        # Echoed in Content-Disposition: a control character there was a 500 (schemathesis).
        "/v1/conversions/google-ads.csv?site=demo&again=%1F",
        "/v1/conversions/google-ads.csv?site=demo&again=a%22b.csv",
        "/v1/conversions?site=demo&state=lost",
        "/v1/conversions?site=demo&limit=5000",
        "/v1/conversions?site=demo&limit=-1",
        "/v1/conversions/google-ads.csv?site=demo&new_only=true&again=x.csv",
    ],
)
async def test_bad_parameters_are_400(api, query: str) -> None:
    client, auth = api
    resp = await client.get(query, headers=auth)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_parameter"


async def test_unknown_sites_unknown_keys_and_other_sites_staff(api) -> None:
    client, auth = api
    assert (await client.get("/v1/conversions?site=nope", headers=auth)).status == 404
    assert (await client.get("/v1/conversions?site=demo")).status == 401
    await add_user(client, "mia@example.com", role="marketer", sites=["shop"])
    await log_in(client, "mia@example.com")
    assert (await client.get("/v1/conversions/google-ads.csv?site=demo")).status == 403
    # Her one site needs no site parameter.
    own = await client.get("/v1/conversions")
    assert own.status == 200 and (await own.json())["site"] == "shop"
    assert (await client.post("/v1/conversions/baidu-ocpc/send?site=shop")).status == 403  # CSRF


async def test_baidu_send_needs_the_site_to_enable_it(api) -> None:
    client, auth = api
    resp = await client.post("/v1/conversions/baidu-ocpc/send?site=demo", headers=auth)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "baidu_not_configured"


async def test_baidu_send_posts_to_the_configured_endpoint(
    aiohttp_client, aiohttp_server, tmp_path: Path, monkeypatch
) -> None:
    got: list[dict[str, Any]] = []

    async def upload(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({"header": {"status": 0, "desc": "success"}})

    receiver = web.Application()
    receiver.router.add_post("/upload", upload)
    server = await aiohttp_server(receiver)
    monkeypatch.setenv("CTGW_BAIDU_OCPC_TOKEN", "tok-123")
    baidu = {"enabled": True, "new_type": 30, "endpoint": str(server.make_url("/upload"))}
    seeder = await aiohttp_client(create_app(parse_config(_raw(tmp_path)), clock=FakeClock(NOW)))
    await _seed(seeder)
    await seeder.close()
    app = create_app(parse_config(_raw(tmp_path, baidu_ocpc=baidu)), clock=FakeClock(NOW))
    client = await aiohttp_client(app)
    # The daemon's first round (at start) sends the call already stored; the next is a minute
    # away, so what the route sends below is its own.
    for _ in range(250):
        if got:
            break
        await asyncio.sleep(0.02)
    assert got == [
        {
            "token": "tok-123",
            "conversionTypes": [
                {
                    "logidUrl": "https://www.demo-plumbing.example/?wbraid=WBRAID4&bd_vid=BD4",
                    "newType": 30,
                }
            ],
        }
    ]
    await client.app[DB].write(_visit_and_call(5, 90.0, bd_vid="BD5"))
    auth = {"Authorization": f"Bearer {await create_key(client.app[DB], 't', NOW)}"}
    resp = await client.post("/v1/conversions/baidu-ocpc/send?site=demo", headers=auth)
    assert await resp.json() == {"site": "demo", "sent": 1, "retry": 0, "rejected": 0, "failed": 0}
    assert [c["logidUrl"] for c in got[1]["conversionTypes"]] == [
        "https://www.demo-plumbing.example/?bd_vid=BD5"
    ]
    again = await client.post("/v1/conversions/baidu-ocpc/send?site=demo", headers=auth)
    assert (await again.json())["sent"] == 0 and len(got) == 2
    url = "/v1/conversions?site=demo&platform=baidu_ocpc"
    listed = await (await client.get(url, headers=auth)).json()
    assert sorted((c["call_id"], c["state"], c["attempts"]) for c in listed["conversions"]) == [
        ("c4", "sent", 1),
        ("c5", "sent", 1),
    ]


def test_the_cli_exports_new_only_files_for_cron(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(_toml(_raw(tmp_path)), encoding="utf-8")
    assert tomllib.loads(config.read_text())["sites"][0]["conversions"]["min_talk_seconds"] == 30
    assert ctgw(config, "conversions", "list", "--site", "demo").returncode == 0  # makes the store
    _seed_file(tmp_path / "ctgw.db")
    out = tmp_path / "out" / "google.csv"
    args = ["conversions", "export", "--site", "demo", "--platform", "google-ads"]
    args += ["--since", "2026-03-01", "--until", "2026-03-10"]
    made = ctgw(config, *args, "--new-only", "--output", str(out))
    assert made.returncode == 0, made.stderr
    assert _csv(out.read_text())[2][0] == "GCLID1" and "1 conversions" in made.stderr
    again = ctgw(config, *args, "--new-only")
    assert len(_csv(again.stdout)) == 2  # nothing new: the header rows only
    listed = ctgw(config, "conversions", "list", "--site", "demo")
    assert "c1\tgoogle_ads\tsent" in listed.stdout
    none = ctgw(config, "conversions", "send-baidu")
    assert none.returncode == 2 and "no site has conversions.baidu_ocpc enabled" in none.stderr


def _seed_file(path: Path) -> None:
    with sqlite3.connect(path) as db:
        for write in _visit_and_call(1, 120.0, gclid="GCLID1"):
            db.execute(write.sql, write.params)


def _toml(raw: dict[str, Any]) -> str:
    """The few TOML forms this test's config needs (tables, arrays of tables, scalars)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        return json.dumps(v)

    def table(prefix: str, data: dict[str, Any], array: bool = False) -> None:
        lines.append(f"[[{prefix}]]" if array else f"[{prefix}]")
        nested = {k: v for k, v in data.items() if isinstance(v, dict | list) and _tables(v)}
        for k, v in data.items():
            if k not in nested:
                lines.append(f"{k} = {value(v)}")
        for k, v in nested.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}", v)
            else:
                for item in v:
                    table(f"{prefix}.{k}", item, array=True)

    for key, section in raw.items():
        if isinstance(section, list):
            for item in section:
                table(key, item, array=True)
        else:
            table(key, section)
    return "\n".join(lines) + "\n"


def _tables(v: Any) -> bool:
    return isinstance(v, dict) or (isinstance(v, list) and bool(v) and isinstance(v[0], dict))
