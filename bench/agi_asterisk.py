"""Calls through a real Asterisk 22: calls/s, time to the route, and the FastAGI commands' times.

Run by hand as root after tests/lab/setup.sh: `.venv/bin/python bench/agi_asterisk.py`.
Boots the lab Asterisk with the project's dialplan, runs the gateway's FastAGI server in its own
process, and places calls with AMI Originate on Local channels, each waiting for the route's
checkpoint event. Reported per level of concurrent calls: calls/s, originate-to-route p50/p99,
the lookup leg (DialBegin to DialEnd) and each SET VARIABLE (AGIExecStart to AGIExecEnd), from
Asterisk's own event timestamps.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.ami import AmiEvent, TestAmi
from tests.lab.asterisk import (
    AMI_SECRET,
    AMI_USER,
    PROJECT,
    AsteriskLab,
    LabPorts,
    asterisk_root,
    free_port,
)


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


async def run_level(ami: TestAmi, concurrency: int, seconds: float) -> dict[str, float]:
    reached: dict[str, asyncio.Future[None]] = {}
    stamps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    to_route: list[float] = []
    fallbacks = 0

    def on_event(event: AmiEvent) -> None:
        nonlocal fallbacks
        linkedid = event.get("Linkedid", "")
        name = event.get("Event", "")
        if name == "UserEvent" and linkedid in reached:
            if event.get("Route") != "sales":
                fallbacks += 1
            if not reached[linkedid].done():
                reached[linkedid].set_result(None)
        elif name in ("DialBegin", "DialEnd") and "@ctgw-lookup-" in event.get("DestChannel", ""):
            stamps[linkedid][name].append(float(event["Timestamp"]))
        elif name in ("AGIExecStart", "AGIExecEnd"):
            stamps[linkedid][name].append(float(event["Timestamp"]))

    ami.on_event = on_event
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        loop = asyncio.get_running_loop()
        while time.perf_counter() < stop:
            call = f"b-{uuid.uuid4().hex[:16]}"
            reached[call] = loop.create_future()
            start = time.perf_counter()
            await ami.originate("+14155550123", "test-inbound", '"B" <+12025550100>', call, 0)
            await asyncio.wait_for(reached[call], 10)
            to_route.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    await asyncio.sleep(0.5)  # the last AGIExecEnd/DialEnd events
    ami.on_event = None
    lookups = [
        (s["DialEnd"][0] - s["DialBegin"][0]) * 1000
        for s in stamps.values()
        if s["DialBegin"] and s["DialEnd"]
    ]
    commands = [
        (end - start) * 1000
        for s in stamps.values()
        for start, end in zip(s["AGIExecStart"], s["AGIExecEnd"], strict=False)
    ]
    return {
        "calls/s": len(to_route) / elapsed,
        "route p50 ms": pct(to_route, 50) * 1000,
        "route p99 ms": pct(to_route, 99) * 1000,
        "lookup p50 ms": pct(lookups, 50),
        "lookup p99 ms": pct(lookups, 99),
        "SET p50 ms": pct(commands, 50),
        "SET p99 ms": pct(commands, 99),
        "fallbacks": fallbacks,
    }


async def bench(lab: AsteriskLab, levels: list[int], seconds: float) -> None:
    ami = await TestAmi.connect(lab.ports.ami, AMI_USER, AMI_SECRET)
    await ami.action("Events", EventMask="call,user,agi")
    ami.events = []
    try:
        rows = {}
        for level in levels:
            await run_level(ami, level, 1.0)  # warm-up
            rows[level] = await run_level(ami, level, seconds)
    finally:
        await ami.close()
    names = list(next(iter(rows.values())))
    print(f"Calls through Asterisk 22 with the ctgw dialplan, {seconds:g} s per level")
    print(f"{'calls':>6} " + " ".join(f"{n:>13}" for n in names))
    for level, row in rows.items():
        print(f"{level:6} " + " ".join(f"{row[n]:13.2f}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--levels", default="1,10,50")
    args = parser.parse_args()
    root = asterisk_root()
    if root is None:
        sys.exit("no Asterisk root filesystem: run tests/lab/setup.sh as root")
    ports = LabPorts(free_port(), free_port(socket.SOCK_DGRAM), free_port(), 33000)
    lab = AsteriskLab(root, ports)
    child = None
    try:
        lab.start()
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.lab.agi_child", str(ports.agi), "Local/sales@test-dest"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=PROJECT,
        )
        assert child.stdout is not None
        if child.stdout.readline() != b"ready\n":
            sys.exit("the FastAGI server did not start")
        levels = [int(level) for level in args.levels.split(",")]
        asyncio.run(bench(lab, levels, args.seconds))
    finally:
        if child is not None:
            child.terminate()
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()
        lab.stop()


if __name__ == "__main__":
    main()
