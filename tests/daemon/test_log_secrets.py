"""What the daemon's info log may not hold: whole session ids (they authorise heartbeats)."""

from __future__ import annotations

import types
from pathlib import Path

import aiohttp

from tests.api.conftest import BROWSER
from tests.daemon.test_restart import free_port, start_daemon, stop_daemon
from tests.unit.test_agi import env_block, fake_asterisk


def write_config(tmp_path: Path, port: int, agi_port: int) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[http]
port = {port}
[store]
url = "sqlite:///{tmp_path / "ctgw.db"}"
[agi]
port = {agi_port}
[log]
level = "info"
[[sites]]
key = "demo"
destination = "PJSIP/agent1"
[[sites.pools]]
target = "+14155550100"
numbers = ["+14155550101", "+14155550102"]
""",
        encoding="utf-8",
    )
    return path


async def test_info_log_never_holds_a_whole_session_id(tmp_path: Path) -> None:
    """A session's whole id appears in no info line: not when opened, renewed, nor called."""
    port, agi_port = free_port(), free_port()
    proc = await start_daemon(write_config(tmp_path, port, agi_port), port)
    try:
        async with aiohttp.ClientSession() as http:
            body = {"site": "demo", "url": "http://127.0.0.1/?utm_source=google"}
            async with http.post(
                f"http://127.0.0.1:{port}/v1/sessions", json=body, headers=BROWSER
            ) as resp:
                assert resp.status == 201
                session = await resp.json()
            beat = f"http://127.0.0.1:{port}/v1/sessions/{session['session_id']}/heartbeat"
            async with http.post(beat) as resp:
                assert resp.status == 200
        number = session["numbers"][0]["number"]
        env = env_block(agi_extension=number, agi_arg_4=number, agi_arg_1="1.0")
        commands = await fake_asterisk(types.SimpleNamespace(port=agi_port), env)  # type: ignore[arg-type]
        assert any("CTGW_ROUTE" in c for c in commands), commands
    finally:
        status, log = stop_daemon(proc)
    assert status == 0, log
    assert '"call_routed"' in log  # the call was logged, and with it what it may show
    assert session["session_id"] not in log
