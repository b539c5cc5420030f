"""Through HTTP fronts (`[http] workers`) new sessions and AMP numbers are limited by the
client's own address, as without them."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.daemon.test_restart import free_port, start_daemon, stop_daemon

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
OPEN = {"site": "demo", "url": "https://www.demo-plumbing.example/"}


def write_config(tmp_path: Path, port: int, trusted: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[http]
port = {port}
workers = 1
trusted_proxies = [{trusted}]
[store]
url = "sqlite:///{tmp_path / "ctgw.db"}"
[agi]
enabled = false
[[sites]]
key = "demo"
[sites.limits]
client_per_minute = 2
client_burst = 2
[[sites.pools]]
target = "+14155550100"
numbers = [{", ".join(f'"+141555501{i:02d}"' for i in range(1, 41))}]
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("path", ["/v1/sessions", "/v1/amp/demo"])
async def test_fronts_limit_each_forwarded_client_apart(tmp_path: Path, path: str) -> None:
    """Behind a trusted proxy, a front counts each client by the address the proxy saw, both
    for sessions it hands over and for AMP requests it passes on."""
    port = free_port()
    proc = await start_daemon(write_config(tmp_path, port, '"127.0.0.1"'), port)
    url = f"http://127.0.0.1:{port}{path}"
    try:
        async with aiohttp.ClientSession(headers=BROWSER) as http:

            async def ask(forwarded: str) -> tuple[int, str]:
                headers = {"X-Forwarded-For": forwarded}
                if path == "/v1/sessions":
                    request = http.post(url, json=OPEN, headers=headers)
                else:
                    request = http.get(url, headers=headers)
                async with request as resp:
                    return resp.status, resp.headers.get("Retry-After", "")

            ok = 201 if path == "/v1/sessions" else 200
            one = [await ask(f"198.51.100.{i}, 203.0.113.5") for i in range(3)]
            assert one == [(ok, ""), (ok, ""), (429, "30")]
            assert await ask("203.0.113.6") == (ok, "")
    finally:
        stop_daemon(proc)


@pytest.mark.parametrize("path", ["/v1/sessions", "/v1/amp/demo"])
async def test_fronts_ignore_x_forwarded_for_from_untrusted_clients(
    tmp_path: Path, path: str
) -> None:
    """With no trusted proxy, a client that writes its own X-Forwarded-For is still counted
    by its own address: through the front, for sessions and for AMP."""
    port = free_port()
    proc = await start_daemon(write_config(tmp_path, port, ""), port)
    url = f"http://127.0.0.1:{port}{path}"
    try:
        async with aiohttp.ClientSession(headers=BROWSER) as http:
            statuses = []
            for i in range(3):
                headers = {"X-Forwarded-For": f"203.0.113.{i}"}
                if path == "/v1/sessions":
                    request = http.post(url, json=OPEN, headers=headers)
                else:
                    request = http.get(url, headers=headers)
                async with request as resp:
                    statuses.append(resp.status)
            assert statuses[2] == 429
    finally:
        stop_daemon(proc)
