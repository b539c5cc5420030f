"""The daemon's conversion worker: Baidu uploads without anyone asking, daily new-only files
in the site's export_dir, and a HEAD that records nothing."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.appkeys import CONFIG, DB
from gateway.config import parse_config
from gateway.store.conversions import list_conversions
from gateway.store.keys import create_key
from gateway.webhooks.conversion_worker import write_daily_files
from tests.api.test_conversions_api import NOW, _raw, _seed
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(90)


async def test_the_daemon_uploads_to_baidu_by_itself(
    aiohttp_client, aiohttp_server, tmp_path: Path, monkeypatch
) -> None:
    got: list[dict[str, Any]] = []

    async def upload(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({"header": {"status": 0}})

    receiver = web.Application()
    receiver.router.add_post("/upload", upload)
    server = await aiohttp_server(receiver)
    baidu = {
        "enabled": True,
        "new_type": 30,
        "endpoint": str(server.make_url("/upload")),
        "token_env": "TEST_BAIDU_TOKEN",
    }
    monkeypatch.setenv("TEST_BAIDU_TOKEN", "from-env")
    # The calls are in the store before the daemon starts: its first round finds them.
    first = create_app(parse_config(_raw(tmp_path)), clock=FakeClock(NOW))
    seeder = await aiohttp_client(first)
    await _seed(seeder)
    await seeder.close()
    app = create_app(parse_config(_raw(tmp_path, baidu_ocpc=baidu)), clock=FakeClock(NOW))
    client = await aiohttp_client(app)
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.02)
    assert got and got[0]["token"] == "from-env"
    for _ in range(200):
        rows = await list_conversions(client.app[DB], "demo", platform="baidu_ocpc")
        if rows and rows[0]["state"] == "sent":
            break
        await asyncio.sleep(0.02)
    assert [(r["call_id"], r["state"]) for r in rows] == [("c4", "sent")]


async def test_daily_files_hold_only_what_no_file_held_before(
    aiohttp_client, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    raw = _raw(tmp_path, export_dir=str(folder))
    client = await aiohttp_client(create_app(parse_config(raw), clock=FakeClock(NOW)))
    await _seed(client)
    config = client.app[CONFIG]
    entry = config.sites[0]
    day = date(2026, 3, 9)
    paths = await write_daily_files(client.app[DB], config, entry, "America/New_York", day, NOW)
    names = sorted(p.name for p in paths)
    assert len(names) == 5 and all(p.exists() for p in paths)
    assert "conversions_demo_google-ads_2026-02-08_2026-03-09_new-20260310T120000Z.csv" in names
    google = next(p for p in paths if "_google-ads_" in p.name).read_text()
    assert "GCLID1" in google
    later = datetime(2026, 3, 11, 12, 0, tzinfo=NOW.tzinfo)
    again = await write_daily_files(client.app[DB], config, entry, "America/New_York", day, later)
    assert all(len(p.read_text().splitlines()) <= 2 for p in again)
    assert not list(folder.glob(".*.tmp"))


async def test_a_head_request_records_nothing_as_exported(aiohttp_client, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(parse_config(_raw(tmp_path)), clock=FakeClock(NOW)))
    await _seed(client)
    auth = {"Authorization": f"Bearer {await create_key(client.app[DB], 't', NOW)}"}
    url = "/v1/conversions/google-ads.csv?site=demo&new_only=true"
    assert (await client.head(url, headers=auth)).status == 200
    assert await list_conversions(client.app[DB], "demo") == []
    resp = await client.get(url, headers=auth)
    assert resp.headers["X-Conversion-Count"] == "1"
