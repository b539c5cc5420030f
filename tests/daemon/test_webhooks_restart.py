"""Webhooks of the daemon as users run it: `ctgw serve` killed with SIGKILL mid-delivery sends
every event after its restart. An attempt in flight at the kill is made again (at least once):
no event is lost, and each keeps its one key, so a receiver that dedupes sees each once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bench.agi import one_call
from gateway.store.outbox import event_key
from tests.daemon.test_restart import free_port, start_daemon
from tests.webhook_receiver import SECRET, Receiver

CALLS = 40
CONCURRENCY = 4


def write_config(tmp_path: Path, http_port: int, agi_port: int, url: str) -> Path:
    path = tmp_path / "gateway.toml"
    numbers = ", ".join(f'"+141555501{i:02d}"' for i in range(1, 11))
    path.write_text(
        f"""
[http]
port = {http_port}
[store]
url = "sqlite:///{tmp_path / "ctgw.db"}"
[agi]
port = {agi_port}
[webhooks]
allow_private_networks = ["127.0.0.0/8"]
concurrency = {CONCURRENCY}
timeout_seconds = 5
first_retry_seconds = 1
max_retry_seconds = 2
[[sites]]
key = "demo"
destination = "PJSIP/agent1"
[[sites.pools]]
target = "+14155550100"
numbers = [{numbers}]
[[sites.static_numbers]]
number = "+14155550150"
source = "billboard"
[[sites.webhooks]]
url = "{url}"
secret = "{SECRET}"
""",
        encoding="utf-8",
    )
    return path


async def wait_for_keys(receiver: Receiver, count: int, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if len(set(receiver.keys)) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(set(receiver.keys))} of {count} events after {seconds} s")


async def test_kill_9_mid_delivery_loses_no_event(tmp_path: Path) -> None:
    receiver = Receiver(delay=0.25)  # slow: deliveries are in flight when the kill comes
    url = await receiver.start()
    http_port, agi_port = free_port(), free_port()
    config = write_config(tmp_path, http_port, agi_port, url)
    proc = await start_daemon(config, http_port)
    try:
        for _ in range(CALLS):
            await one_call(agi_port)
        await wait_for_keys(receiver, 3, 20)
        proc.kill()  # SIGKILL: no shutdown, attempts in flight are cut off
        proc.wait()
        before = len(set(receiver.keys))
        assert before < CALLS, "every event went out before the kill; nothing was tested"
        proc = await start_daemon(config, http_port)
        await wait_for_keys(receiver, CALLS, 60)
    finally:
        proc.terminate()
        proc.wait()
        await receiver.stop()
    with sqlite3.connect(tmp_path / "ctgw.db") as db:
        rows = db.execute("SELECT event_id, created_at FROM outbox WHERE topic = 'call.started'")
        expected = {event_key(event_id, created_at) for event_id, created_at in rows}
    assert len(expected) == CALLS
    assert set(receiver.keys) == expected  # no event lost, no stranger
    assert receiver.bad_signatures == 0
    # At least once: only the attempts in flight at the kill may have come twice.
    assert len(receiver.keys) - len(expected) <= CONCURRENCY
