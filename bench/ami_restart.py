"""Evaluate AMI clients across an Asterisk restart: events lost, hangs, reconnect time.

Run by hand, as root, after tests/lab/setup.sh built the Asterisk root filesystem (docs/lab.md):

    .venv/bin/pip install asterisk-ami==0.1.7   # only for this evaluation, not a dependency
    .venv/bin/python -m bench.ami_restart [--calls 3] [--idle 5]

For each client: boot the private Asterisk (AMI on 127.0.0.1:26038), connect the client, stay
idle, place calls, restart Asterisk, place calls again. A separate placer connection originates
calls shaped like the ctgw dialplan; each completed call produces one `UserEvent: CtgwEvalDone`
and six Hangup events (two Local halves each for caller, lookup leg and agent).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

from gateway.telephony.ami import AmiClient
from tests.lab.eval_asterisk import AMI_PORT, AMI_SECRET, AMI_USER, EvalAsterisk

HANGUPS_PER_CALL = 6


@dataclass
class Tally:
    """What one client saw, stamped with monotonic times."""

    counts: Counter[str] = field(default_factory=Counter)
    logins: list[float] = field(default_factory=list)

    def event(self, name: str) -> None:
        self.counts[name] += 1


class CtgwSubject:
    name = "ctgw asyncio AmiClient"

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.client = AmiClient(
            "127.0.0.1", AMI_PORT, AMI_USER, AMI_SECRET, event_mask="call,user", ping_interval=5
        )

    def resync_started(self) -> None:
        self.tally.logins.append(time.monotonic())

    def resynced(self, channels: object) -> None:
        pass

    async def start(self) -> None:
        self.client.subscribe(lambda e: self.tally.event(e.event))
        self.client.on_resync(self)
        self.client.start()
        await self.client.wait_connected(10)

    async def close(self) -> None:
        await self.client.close()


class AsteriskAmiSubject:
    """asterisk-ami 0.1.7: blocking socket + listener thread, AutoReconnect pinging each second;
    events are bridged into asyncio with call_soon_threadsafe."""

    name = "asterisk-ami 0.1.7 (thread bridged)"
    auto_reconnect = True

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.client: object = None
        self.reconnector: object = None

    async def start(self) -> None:
        from asterisk.ami import AMIClient, AutoReconnect

        loop = asyncio.get_running_loop()
        client = AMIClient(address="127.0.0.1", port=AMI_PORT)

        def on_event(event: object, source: object) -> None:
            name = getattr(event, "name", "?")
            loop.call_soon_threadsafe(self.tally.event, name)

        def on_reconnect(*_: object) -> None:
            loop.call_soon_threadsafe(self.tally.logins.append, time.monotonic())

        client.add_event_listener(on_event)
        # As its README shows: AutoReconnect wraps login() before the first login, and its
        # thread starts from that login's callback.
        if self.auto_reconnect:
            self.reconnector = AutoReconnect(client, delay=1, on_reconnect=on_reconnect)
        future = await asyncio.to_thread(client.login, username=AMI_USER, secret=AMI_SECRET)
        response = await asyncio.to_thread(lambda: future.response)
        if response is None or response.is_error():
            raise RuntimeError(f"asterisk-ami login failed: {response}")
        self.tally.logins.append(time.monotonic())
        self.client = client

    async def close(self) -> None:
        client = self.client
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(client.logoff), 5)  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(client.disconnect), 5)  # type: ignore[attr-defined]


class AsteriskAmiBareSubject(AsteriskAmiSubject):
    """The same without AutoReconnect: nothing pings, so its 3 s socket timeout meets idleness."""

    name = "asterisk-ami 0.1.7 without AutoReconnect"
    auto_reconnect = False


async def place_calls(placer: AmiClient, n: int, prefix: str) -> int:
    placed = 0
    for i in range(n):
        # The caller's own leg just waits, as in the recorded transcript: the ;2 half runs
        # the inbound dialplan and reaches agent1, who answers and hangs up after a second.
        answer = await placer.action(
            "Originate",
            {
                "Channel": f"Local/+1415555{random.randint(100, 999)}1@ctgw-inbound",
                "Application": "Wait",
                "Data": "5",
                "CallerID": f'"{prefix}{i}" <+12025550100>',
                "Async": "true",
            },
        )
        placed += answer.response == "Success"
        await asyncio.sleep(0.3)
    return placed


async def wait_for(predicate, within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def evaluate(
    subject_cls, calls: int, idle: float, down: float, freeze: float
) -> dict[str, object]:
    asterisk = EvalAsterisk()
    tally = Tally()
    subject = subject_cls(tally)
    placer = AmiClient("127.0.0.1", AMI_PORT, AMI_USER, AMI_SECRET, event_mask="off")
    result: dict[str, object] = {"client": subject.name, "idle": idle}
    result |= {"freeze_s": freeze} if freeze else {"extra_down_s": down}
    await asyncio.to_thread(asterisk.start)
    try:
        placer.start()
        await placer.wait_connected(10)
        await subject.start()
        await asyncio.sleep(idle)  # quiet line: does the client survive idleness?
        placed = await place_calls(placer, calls, "before")
        await wait_for(lambda: tally.counts["UserEvent"] >= placed, 20)
        before = Counter(tally.counts)
        logins_before = len(tally.logins)
        stopped = time.monotonic()
        if freeze:
            # A hung Asterisk: the socket stays open but nothing answers.
            os.killpg(asterisk.process.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            await asyncio.sleep(freeze)
            os.killpg(asterisk.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
        else:
            await asyncio.to_thread(asterisk.stop)
            await asyncio.sleep(down)
            await asyncio.to_thread(asterisk.start)
        booted = time.monotonic()
        reconnected = await wait_for(lambda: len(tally.logins) > logins_before, 30)
        relogin = tally.logins[-1] if reconnected else None
        await placer.wait_connected(30)
        placed_after = await place_calls(placer, calls, "after")
        await wait_for(lambda: tally.counts["UserEvent"] >= placed + placed_after, 20)
        await asyncio.sleep(1)
        after = tally.counts - before
        result |= {
            "calls_before": placed,
            "calls_after": placed_after,
            "done_events_before": f"{before['UserEvent']}/{placed}",
            "hangups_before": f"{before['Hangup']}/{placed * HANGUPS_PER_CALL}",
            "done_events_after": f"{after['UserEvent']}/{placed_after}",
            "hangups_after": f"{after['Hangup']}/{placed_after * HANGUPS_PER_CALL}",
            "reconnected": reconnected,
            "asterisk_gone_s": round(booted - stopped, 2),
            "relogin_after_stop_s": round(relogin - stopped, 2) if relogin else None,
        }
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(subject.close(), 10)
        await placer.close()
        await asyncio.to_thread(asterisk.close)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="quiet seconds before calls")
    parser.add_argument("--down", type=float, default=0.0, help="extra seconds Asterisk stays down")
    parser.add_argument("--freeze", type=float, default=0.0, help="SIGSTOP instead of a restart")
    parser.add_argument("--only", choices=["ctgw", "asterisk-ami", "asterisk-ami-bare"])
    args = parser.parse_args()
    subjects = {
        "ctgw": CtgwSubject,
        "asterisk-ami": AsteriskAmiSubject,
        "asterisk-ami-bare": AsteriskAmiBareSubject,
    }
    for key, cls in subjects.items():
        if args.only and key != args.only:
            continue
        try:
            print(
                await asyncio.wait_for(
                    evaluate(cls, args.calls, args.idle, args.down, args.freeze), 180
                )
            )
        except ImportError as exc:
            print({"client": key, "skipped": f"not installed: {exc}"})
        except Exception as exc:
            print({"client": key, "failed": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    asyncio.run(main())
