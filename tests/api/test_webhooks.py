"""Webhooks against a real local receiver: 500, a timeout, a connection closed mid-answer and a
redirect, then recovery. Every event arrives once by its key, in order per call, signed as the
docs' recipes verify; the backoff runs on the fake clock, so nothing sleeps for it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.appkeys import AGI, CONFIG, DB
from gateway.metrics import Metrics
from gateway.store.keys import create_key
from gateway.store.outbox import event_key
from gateway.store.webhooks import create_endpoint
from gateway.telephony.call_ledger import CallLedger
from gateway.telephony.call_lifecycle import CallUpdate
from gateway.webhooks.worker import WebhookWorker, backoff_seconds
from tests.api.conftest import demo_config
from tests.api.test_call_routing import call_env, routed
from tests.conftest import FakeClock
from tests.unit.test_agi import fake_asterisk
from tests.webhook_receiver import SECRET, Receiver, doc_recipe


def hook_config(tmp_path: Path, url: str, **sender: Any) -> dict[str, Any]:
    raw = demo_config(tmp_path)
    raw["sites"][0]["webhooks"] = [{"url": url, "secret": SECRET}]
    raw["webhooks"] = {
        "enabled": False,  # the test runs its own worker, on the fake clock
        "allow_private_networks": ["127.0.0.0/8"],
        "timeout_seconds": 1,
        **sender,
    }
    return raw


@pytest.fixture
async def receiver():
    found = Receiver()
    yield found
    await found.stop()


async def key_header(client) -> dict[str, str]:
    key = await create_key(client.app[DB], "test", datetime.now(UTC))
    return {"Authorization": f"Bearer {key}"}


def worker_of(client, clock: FakeClock) -> WebhookWorker:
    config = client.app[CONFIG]
    return WebhookWorker(client.app[DB], config.webhooks, clock, Metrics(), rng=lambda: 1.0)


async def make_events(client, clock: FakeClock) -> None:
    """Two answered calls (started, updated, completed, the lead contacted) and a missed one
    (started, completed, a follow-up task)."""
    ledger = CallLedger(client.app[DB], Metrics())
    for n in range(3):
        env = call_env("+14155550150", caller=f"+1202555010{n}", linkedid=f"{n}.0")
        routed(await fake_asterisk(client.app[AGI], env))
    start = clock.now()
    for n in range(2):
        answered = CallUpdate(
            linkedid=f"{n}.0", state="answered", started_at=start, answered_at=start
        )
        await ledger.call_updated(answered)
        await ledger.call_updated(answered)  # a second snapshot: no second call.updated
        done = CallUpdate(
            linkedid=f"{n}.0",
            state="answered",
            started_at=start,
            answered_at=start,
            ended_at=clock.advance(seconds=90),
            talk_seconds=90.0,
            final=True,
        )
        await ledger.call_updated(done)
    missed = CallUpdate(
        linkedid="2.0", state="missed", started_at=start, ended_at=clock.now(), final=True
    )
    await ledger.call_updated(missed)
    await asyncio.sleep(0.1)  # the CRM's rows go in a commit of their own


async def drain(worker: WebhookWorker, client, clock: FakeClock, rounds: int = 80) -> None:
    db = client.app[DB]
    for _ in range(rounds):
        await worker.round(wait=True)
        left = await db.fetchone(
            "SELECT (SELECT count(*) FROM webhook_deliveries WHERE state != 'delivered')"
            " + (SELECT count(*) FROM outbox WHERE delivered_at IS NULL) AS n"
        )
        if left["n"] == 0:
            return
        clock.advance(seconds=700)
    raise AssertionError("deliveries left after all rounds")


async def test_every_event_arrives_once_in_order_through_a_faulty_receiver(
    make_client, tmp_path, clock, receiver
) -> None:
    receiver.modes = ["500", "timeout", "close", "redirect", "500"]
    url = await receiver.start()
    client = await make_client(hook_config(tmp_path, url))
    await make_events(client, clock)
    worker = worker_of(client, clock)
    try:
        await drain(worker, client, clock)
    finally:
        await worker.close()
    rows = await client.app[DB].fetchall("SELECT event_id, topic, created_at FROM outbox")
    expected = {event_key(r["event_id"], r["created_at"]): r["topic"] for r in rows}
    topics = sorted(expected.values())
    assert topics.count("call.started") == 3 and topics.count("call.completed") == 3
    assert topics.count("call.updated") == 2 and "task.created" in topics
    assert "contact.updated" in topics
    assert receiver.modes == [] and receiver.redirects_followed == 0
    assert receiver.bad_signatures == 0
    assert sorted(receiver.keys) == sorted(expected)  # each event once, none lost
    by_call: dict[str, list[str]] = defaultdict(list)
    for event in receiver.accepted:
        if event["type"].startswith("call."):
            by_call[event["data"]["call_id"]].append(event["type"])
            assert event["version"] == 1 and event["site"] == "demo"
    assert sorted(by_call.values()) == [
        ["call.started", "call.completed"],
        ["call.started", "call.updated", "call.completed"],
        ["call.started", "call.updated", "call.completed"],
    ]
    completed = [e for e in receiver.accepted if e["type"] == "call.completed"]
    assert {e["data"]["state"] for e in completed} == {"answered", "missed"}
    assert all(e["data"]["ended_at"] and e["data"]["caller"] for e in completed)


async def test_the_javascript_recipe_verifies_a_real_delivery(
    make_client, tmp_path, clock, receiver
) -> None:
    node = shutil.which("node")
    if node is None:
        # tests/lab/setup.d/40-node.sh installs it; under CI a missing node is a failure.
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed (CI=true: run tests/lab/setup.sh as root)")
        pytest.skip("node is not installed: run tests/lab/setup.sh as root")
    url = await receiver.start()
    client = await make_client(hook_config(tmp_path, url))
    routed(await fake_asterisk(client.app[AGI], call_env("+14155550150")))
    worker = worker_of(client, clock)
    try:
        await drain(worker, client, clock)
    finally:
        await worker.close()
    headers, body = receiver.raw[0]
    script = tmp_path / "verify.js"
    script.write_text(
        doc_recipe("javascript")
        + "const [secret, header, file] = process.argv.slice(2);\n"
        + "const body = require('node:fs').readFileSync(file);\n"
        + "console.log(verify(secret, header, body), verify('wrong' + secret, header, body));\n"
    )
    (tmp_path / "body").write_bytes(body)
    result = subprocess.run(
        [node, str(script), SECRET, headers["Ctgw-Signature"], str(tmp_path / "body")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.split() == ["true", "false"]


async def test_a_receiver_down_for_a_day_parks_then_replay_delivers(
    make_client, tmp_path, clock, receiver
) -> None:
    receiver.modes = ["500"] * 1000
    url = await receiver.start()
    client = await make_client(hook_config(tmp_path, url))
    auth = await key_header(client)
    for n in range(2):
        routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid=f"{n}.0")))
    worker = worker_of(client, clock)
    try:
        for _ in range(400):
            await worker.round(wait=True)
            clock.advance(seconds=601)
            if clock.now() > clock.now().replace(year=2026, month=1, day=7):
                break
        await worker.round(wait=True)
        parked = await (
            await client.get("/v1/webhook-deliveries?state=parked", headers=auth)
        ).json()
        assert len(parked["deliveries"]) == 2
        assert parked["deliveries"][0]["last_error"].startswith("HTTP 500")
        receiver.modes = []
        webhook_id = parked["deliveries"][0]["webhook_id"]
        first = parked["deliveries"][-1]["delivery_id"]
        answer = await client.post(f"/v1/webhook-deliveries/{first}/retry", headers=auth)
        retried = await answer.json()
        assert retried["state"] == "failed" and retried["next_attempt_at"] is not None
        await worker.round(wait=True)
        assert len(receiver.keys) == 1
        answer = await client.post(f"/v1/webhooks/{webhook_id}/replay", headers=auth)
        assert (await answer.json())["replayed"] == 1
        await worker.round(wait=True)
    finally:
        await worker.close()
    assert len(set(receiver.keys)) == 2
    done = await (await client.get("/v1/webhook-deliveries?state=delivered", headers=auth)).json()
    assert len(done["deliveries"]) == 2


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    waits = [backoff_seconds(n, 10, 600, lambda: 1.0) for n in range(1, 10)]
    assert waits[:4] == [10, 20, 40, 80] and waits[-1] == 600
    assert backoff_seconds(3, 10, 600, lambda: 0.0) == 20  # half of it at the least


async def test_webhooks_api_shows_the_secret_once_and_refuses_internal_hosts(
    make_client, tmp_path
) -> None:
    client = await make_client(demo_config(tmp_path))
    auth = await key_header(client)
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost:9/x",
        "http://[::1]/",
        "http://10.1.2.3/",
    ):
        answer = await client.post("/v1/webhooks", json={"site": "demo", "url": url}, headers=auth)
        assert answer.status == 400, url
        error = (await answer.json())["error"]
        assert error["code"] == "refused_url" and "allow_private_networks" in error["message"]
    answer = await client.post(
        "/v1/webhooks",
        json={"site": "demo", "url": "http://93.184.215.14/hook", "events": ["call.started"]},
        headers=auth,
    )
    assert answer.status == 201
    made = await answer.json()
    assert made["secret"].startswith("whsec_") and made["events"] == ["call.started"]
    listed = await (await client.get("/v1/webhooks", headers=auth)).json()
    assert [w["webhook_id"] for w in listed["webhooks"]] == [made["webhook_id"]]
    assert "secret" not in json.dumps(listed)
    shown = await client.get(f"/v1/webhooks/{made['webhook_id']}", headers=auth)
    assert "secret" not in await shown.json()
    bad = await client.post(
        "/v1/webhooks", json={"site": "demo", "url": "ftp://x/", "events": []}, headers=auth
    )
    assert bad.status == 400
    assert (
        await client.post(
            "/v1/webhooks", json={"site": "nope", "url": "http://93.184.215.14/"}, headers=auth
        )
    ).status == 404
    gone = await client.delete(f"/v1/webhooks/{made['webhook_id']}", headers=auth)
    assert gone.status == 204
    assert (await client.get("/v1/webhooks", headers={})).status == 401


async def test_delivery_time_check_refuses_an_address_not_allowed(
    make_client, tmp_path, clock, receiver
) -> None:
    """An endpoint in the store whose host is (now) internal: the attempt fails, with why."""
    url = await receiver.start()
    raw = hook_config(tmp_path, url.replace("127.0.0.1", "localhost"))
    raw["webhooks"]["allow_private_networks"] = []
    client = await make_client(raw)
    routed(await fake_asterisk(client.app[AGI], call_env("+14155550150")))
    worker = worker_of(client, clock)
    try:
        await worker.round(wait=True)
    finally:
        await worker.close()
    row = await client.app[DB].fetchone("SELECT attempts, last_error FROM webhook_deliveries")
    assert row["attempts"] == 1 and receiver.requests == 0
    assert "loopback address: refused" in row["last_error"], row["last_error"]


async def test_a_hanging_receiver_does_not_slow_the_route(make_client, tmp_path, receiver) -> None:
    """The app's own sender with a receiver that never answers: routes stay quick."""
    receiver.modes, receiver.hang = ["timeout"] * 100, 7.0
    url = await receiver.start()
    raw = hook_config(tmp_path, url, enabled=True, timeout_seconds=5)
    client = await make_client(raw)
    loop = asyncio.get_running_loop()
    slowest = 0.0
    for n in range(30):
        began = loop.time()
        env = call_env("+14155550150", linkedid=f"{n}.9")
        assert routed(await fake_asterisk(client.app[AGI], env))["CTGW_ROUTE"]
        slowest = max(slowest, loop.time() - began)
        await asyncio.sleep(0.02)
    assert receiver.requests >= 1  # the sender was trying meanwhile
    assert slowest < 0.25, slowest


async def test_the_running_sender_posts_each_event_once(make_client, tmp_path, receiver) -> None:
    """The app's own sender, on its own schedule: a read of the due deliveries that ran while
    one ended must not send that one again."""
    url = await receiver.start()
    client = await make_client(hook_config(tmp_path, url, enabled=True))
    for n in range(40):
        env = call_env("+14155550150", caller=f"+120255501{n:02d}", linkedid=f"{n}.7")
        routed(await fake_asterisk(client.app[AGI], env))
    for _ in range(200):
        if len(receiver.keys) >= 40:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert len(set(receiver.keys)) == 40
    assert receiver.requests == 40


async def test_a_persons_edit_of_a_lead_queues_contact_updated(make_client, tmp_path) -> None:
    client = await make_client(demo_config(tmp_path))
    auth = await key_header(client)
    # Events are queued only for an endpoint that asks for them (test_webhook_idle.py).
    wanted = ["task.created", "contact.updated"]
    await create_endpoint(
        client.app[DB], "demo", "https://hooks.example/", wanted, "s" * 16, datetime.now(UTC)
    )
    routed(await fake_asterisk(client.app[AGI], call_env("+14155550150")))
    await CallLedger(client.app[DB], Metrics()).call_updated(
        CallUpdate(
            linkedid="1.0",
            state="missed",
            started_at=datetime.now(UTC),
            ended_at=datetime.now(UTC),
            final=True,
        )
    )
    await asyncio.sleep(0.1)
    contacts = await (await client.get("/v1/contacts", headers=auth)).json()
    contact_id = contacts["contacts"][0]["contact_id"]
    edit = {"site": "demo", "status": "qualified", "notes": "wants a quote"}
    assert (await client.patch(f"/v1/contacts/{contact_id}", json=edit, headers=auth)).status == 200
    rows = await client.app[DB].fetchall("SELECT topic, payload FROM outbox ORDER BY event_id")
    topics = [r["topic"] for r in rows]
    # No endpoint asks for call.started or call.completed here: none was queued.
    assert topics[:2] == ["task.created", "contact.updated"] and "call.completed" not in topics
    payload = json.loads(rows[-1]["payload"])
    assert rows[-1]["topic"] == "contact.updated" and payload["key"] == f"contact:{contact_id}"
    fields = {c["field"]: c["after"] for c in payload["data"]["changes"]}
    assert fields["status"] == "qualified" and payload["data"]["by"].startswith("key:")
