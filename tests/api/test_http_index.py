"""The front door a new user opens first: `GET /`, `GET /v1/`, and the admin session answer."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import open_session
from tests.daemon.test_restart import free_port, start_daemon, stop_daemon, write_config


async def test_home_page_links_the_demo_script_health_metrics_and_api(client: TestClient) -> None:
    """GET / is a small HTML page linking the demo, swap.js, health, metrics and the API index,
    loading nothing from elsewhere."""
    resp = await client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    for href in ("/demo/", "/swap.js", "/healthz", "/metrics", "/v1/"):
        assert f'href="{href}"' in page
    assert "src=" not in page and "http://" not in page and "https://" not in page
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


async def test_api_index_lists_the_routers_routes_and_which_need_a_key(
    client: TestClient, admin_key: str
) -> None:
    """GET /v1/ lists every route of the app's router with whether it needs a key, and the
    routes it says need one answer 401 without a key while the others do not."""
    resp = await client.get("/v1/")
    assert resp.status == 200
    routes = (await resp.json())["routes"]
    listed = {(r["method"], r["path"]): r["needs_key"] for r in routes}
    on_router = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method not in ("HEAD", "OPTIONS") and route.resource is not None
    }
    assert set(listed) == on_router
    assert listed[("POST", "/v1/sessions")] is False
    assert listed[("GET", "/v1/sites")] is True
    assert listed[("GET", "/v1/sessions/{session_id}")] is True
    assert listed[("GET", "/healthz")] is False
    for (method, path), needs_key in listed.items():
        if method != "GET" or "{" in path:
            continue
        async with client.get(path) as bare:
            assert (bare.status == 401) is needs_key, (path, bare.status)
        if needs_key:
            auth = {"Authorization": f"Bearer {admin_key}"}
            async with client.get(path, headers=auth) as keyed:
                assert keyed.status == 200, path


async def test_admin_session_answer_holds_numbers_as_a_list(
    client: TestClient, admin_key: str
) -> None:
    """GET /v1/sessions/{id} gives `numbers` as a JSON list, not a JSON string."""
    session = await (await open_session(client)).json()
    resp = await client.get(
        f"/v1/sessions/{session['session_id']}",
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert resp.status == 200
    numbers = (await resp.json())["numbers"]
    assert isinstance(numbers, list)
    assert [(n["target"], n["number"]) for n in numbers] == [
        (n["target"], n["number"]) for n in session["numbers"]
    ]


@pytest.mark.parametrize("workers", [0, 1])
async def test_index_pages_answer_through_the_daemon_and_its_fronts(
    tmp_path: Path, workers: int
) -> None:
    """The real daemon answers / and /v1/ itself and through an HTTP front."""
    port = free_port()
    proc = await start_daemon(write_config(tmp_path, port, workers=workers), port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/") as resp:
                assert resp.status == 200 and 'href="/v1/"' in await resp.text()
            async with http.get(f"http://127.0.0.1:{port}/v1/") as resp:
                assert resp.status == 200
                paths = {r["path"] for r in (await resp.json())["routes"]}
                assert {"/v1/sessions", "/v1/calls", "/"} <= paths
    finally:
        status, log = stop_daemon(proc)
    assert status == 0, log
