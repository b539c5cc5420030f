"""The AMI client against a fake Asterisk manager on a real loopback socket."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from structlog.testing import capture_logs

from gateway.telephony.ami import AmiActionError, AmiClient, AmiDisconnected, backoff_delay
from gateway.telephony.ami_protocol import AmiMessage
from tests.fake_ami import FakeAmi, load_transcript


class Recorder:
    """Collects events and resyncs the client dispatches."""

    def __init__(self) -> None:
        self.events: list[AmiMessage] = []
        self.resyncs: list[Sequence[AmiMessage]] = []
        self.started = 0

    def __call__(self, event: AmiMessage) -> None:
        self.events.append(event)

    def resync_started(self) -> None:
        self.started += 1

    def resynced(self, channels: Sequence[AmiMessage]) -> None:
        self.resyncs.append(channels)


# Generous: every wait below ends as soon as its condition holds; the bound only turns a lost
# condition into a failure instead of a hang, and must hold on a loaded 2-core machine.
WAIT = 30.0


async def until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = await FakeAmi().start()
    yield server
    await server.close()


@pytest.fixture
async def connect(fake: FakeAmi) -> AsyncIterator[Callable[..., AmiClient]]:
    clients: list[AmiClient] = []

    def make(**overrides: object) -> AmiClient:
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": fake.port,
            "username": "ctgw",
            "secret": fake.secret,
            "backoff_base": 0.05,
            "backoff_cap": 0.2,
            "rng": random.Random(42),
        }
        settings.update(overrides)
        client = AmiClient(**settings)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_logs_in_resyncs_and_dispatches_events_in_order(fake, connect):
    """Logs in with the call event mask, resyncs, then hands every event to subscribers in order."""
    events = load_transcript("answered-then-unanswered.txt")
    fake.after_login = events
    fake.channels = load_transcript("coreshowchannels-answered.txt")
    client = connect()
    seen = Recorder()
    client.subscribe(seen)
    client.on_resync(seen)
    client.start()
    # The events come right after the login, before the resync's answer: wait for both.
    await until(lambda: len(seen.events) == len(events) and len(seen.resyncs) == 1)
    login = fake.actions[0]
    assert login.get("Action") == "Login" and login.get("Events") == "call"
    assert [e.event for e in seen.events] == [b.split("\n")[0][7:] for b in events]
    assert seen.started == 1 and [len(r) for r in seen.resyncs] == [4]
    assert {c.get("Linkedid") for c in seen.resyncs[0]} == {"1795591690.0"}
    assert client.connected


async def test_secret_never_reaches_logs_or_repr(fake, connect):
    """Neither a good nor a refused login writes the secret to a log line or the client's repr."""
    with capture_logs() as logs:
        good = connect()
        good.start()
        await good.wait_connected(WAIT)
        bad = connect(secret="wrong-secret-xyz")
        bad.start()
        await until(lambda: any(e.get("reason", "").startswith("refused") for e in logs))
    text = repr(logs) + repr(good) + repr(bad)
    assert fake.secret not in text and "wrong-secret-xyz" not in text
    assert not bad.connected


async def test_reconnects_after_server_drops_and_resyncs_again(fake, connect):
    """When Asterisk drops the connection the client logs in again and resyncs again."""
    client = connect()
    seen = Recorder()
    client.subscribe(seen)
    client.on_resync(seen)
    client.start()
    await client.wait_connected(WAIT)
    await fake.drop_clients()
    # Logged in again is not resynced yet: wait for the second resync itself.
    await until(lambda: len(seen.resyncs) == 2)
    assert fake.logins == 2 and seen.started == 2 and client.connected
    await fake.send("Event: Newchannel\nChannel: PJSIP/x-00000001\nLinkedid: 9.9")
    await until(lambda: any(e.get("Linkedid") == "9.9" for e in seen.events))


async def test_reconnects_when_server_comes_back_on_the_same_port(fake, connect):
    """With Asterisk gone for a while the client keeps retrying and logs in once it is back."""
    client = connect()
    client.start()
    await client.wait_connected(WAIT)
    port = fake.port
    with capture_logs() as logs:
        await fake.close()
        await until(lambda: not client.connected)
        # A few refused attempts while Asterisk is away, counted from the client's own log.
        await until(lambda: sum("ConnectionRefused" in e.get("reason", "") for e in logs) >= 2)
    again = await FakeAmi().start(port)
    try:
        await until(lambda: again.logins == 1 and client.connected)
    finally:
        await again.close()


async def test_action_without_answer_times_out(fake, connect):
    """An action Asterisk never answers raises TimeoutError after its timeout, not later."""
    client = connect()
    client.start()
    await client.wait_connected(WAIT)
    fake.answer_actions = False
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError):
        await client.action("Ping", timeout_s=0.2)
    assert loop.time() - began < client.action_timeout / 2  # its own timeout, not the default


async def test_error_response_raises_action_error(fake, connect):
    """`Response: Error` becomes AmiActionError carrying Asterisk's message."""
    client = connect()
    client.start()
    await client.wait_connected(WAIT)
    with pytest.raises(AmiActionError, match="Invalid/unknown command"):
        await client.action("NoSuchAction")


async def test_action_while_disconnected_fails_at_once(connect):
    """An action without a logged-in connection raises AmiDisconnected instead of waiting."""
    client = connect(port=1)
    with pytest.raises(AmiDisconnected):
        await client.action("Ping")


async def test_unanswered_pings_mark_the_connection_dead(fake, connect):
    """A peer that stops answering Ping is dropped and the client reconnects."""
    client = connect(ping_interval=0.1, ping_timeout=0.1)
    client.start()
    await client.wait_connected(WAIT)
    fake.answer_pings = False
    await until(lambda: fake.logins >= 2)


async def test_malformed_input_never_crashes_the_reader(fake, connect):
    """Garbage, oversized and non-UTF-8 messages are survived; the next good event arrives."""
    client = connect(max_message_bytes=4096)
    seen = Recorder()
    client.subscribe(seen)
    client.start()
    await client.wait_connected(WAIT)
    await fake.send(b"no colon here\r\n\xff\xfe\x00binary: \x00\x01\r\n\r\n")
    await fake.send(b"Event: Huge\r\nData: " + b"x" * 10000 + b"\r\n\r\n")
    await fake.send(b"Event: Many\r\n" + b"K: v\r\n" * 2000 + b"\r\n")
    await fake.send(b"\r\n\r\n\n\nEvent: Bare\nChannel: a\n\n")
    await fake.send("Event: Newchannel\nChannel: PJSIP/ok-00000001\nLinkedid: 1.1")
    await until(lambda: any(e.get("Linkedid") == "1.1" for e in seen.events))
    names = [e.event for e in seen.events]
    assert "Huge" not in names and "Many" not in names and "Bare" in names
    assert client.connected and fake.logins == 1


async def test_originate_sends_a_queued_call(fake, connect):
    """Originate sends channel, context, exten, caller id and variables, with Async true."""
    client = connect()
    client.start()
    await client.wait_connected(WAIT)
    answer = await client.originate(
        "PJSIP/agent1",
        context="ctgw-click",
        exten="+14155550123",
        caller_id='"Ctgw" <+14155550100>',
        variables={"CTGW_CALL_ID": "c1"},
    )
    assert answer.response == "Success"
    sent = fake.actions[-1]
    assert sent.get("Channel") == "PJSIP/agent1" and sent.get("Async") == "true"
    assert sent.get("Exten") == "+14155550123" and sent.get_all("Variable") == ["CTGW_CALL_ID=c1"]


def test_backoff_grows_to_its_cap_with_jitter():
    """The reconnect delay doubles per attempt, never exceeds the cap and is never below half."""
    rng = random.Random(1)
    delays = [backoff_delay(n, 0.5, 30.0, rng) for n in range(12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(15.0 <= d <= 30.0 for d in delays[7:])
    assert len({round(d, 6) for d in delays[7:]}) > 1


async def test_resync_repeats_while_connected(fake, connect):
    """Besides each login, the live channel list is fetched again every `resync_interval`."""
    client = connect(resync_interval=0.1)
    seen = Recorder()
    client.on_resync(seen)
    client.start()
    await until(lambda: len(seen.resyncs) >= 3)
    assert fake.logins == 1 and seen.started - len(seen.resyncs) in (0, 1)


async def test_close_ends_promptly_at_any_moment_of_the_connection(fake):
    """close() ends the client promptly whenever it comes: while connecting, logging in,
    resyncing, connected, refused, or tearing down a connection Asterisk dropped."""
    for secret in (fake.secret, "wrong-secret"):
        for moment in range(200):
            client = AmiClient(
                "127.0.0.1",
                fake.port,
                "ctgw",
                secret,
                backoff_base=0.0,
                backoff_cap=0.0,
                rng=random.Random(moment),
            )
            client.start()
            # One loop pass per step: close() lands on a different await of the lifecycle
            # each time, including the window where an answer and the cancellation meet.
            for _ in range(moment):
                await asyncio.sleep(0)
            if moment % 2:
                await fake.drop_clients()
                for _ in range(moment % 7):
                    await asyncio.sleep(0)
            closing = asyncio.ensure_future(client.close())
            done, _ = await asyncio.wait({closing}, timeout=WAIT)
            assert done, f"close() at loop pass {moment} still waits after {WAIT} s"
            closing.result()
            assert not client.connected


async def test_cancelling_a_caller_of_close_is_not_swallowed(fake, connect):
    """A task cancelled while it waits in close() ends cancelled, as any awaiting task does."""
    client = connect()
    client.start()
    await client.wait_connected(WAIT)
    closing = asyncio.ensure_future(client.close())
    await asyncio.sleep(0)  # close() has cancelled the connection and waits for it to end
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert closing.cancelled()
    await until(lambda: not client.connected)
