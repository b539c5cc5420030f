"""Attribution under pressure: ctgw's right / wrong / unattributed calls per pool size and policy,
next to a naive tracker on the same visitors (issue 11).

Run by hand from the project folder:
  .venv/bin/python bench/attribution.py [--seeds 1,2,3] [--sizes 1.0,1.2] [--policy overflow]
      [--minutes 4] [--rate 1.0] [--jobs 4] [--tree DIR]
Seeded visitors with known truth (bench/attribution_traffic.py: bursts of ad traffic, second tabs,
returning visitors, bots, and callers on the page, just after leaving and late) drive the real
daemon, `ctgw serve` on a generated config with one pool, through its HTTP API and FastAGI as
Asterisk speaks it, in real time with the issue's scaled-down timings (heartbeat 5 s, grace 15 s,
cooldown 30 s, window 60 s). Each pool is a multiple of the traffic's peak live leases. Every
configuration runs its own daemon; they run side by side (`--jobs`), so a run takes about
`--minutes` plus about two and a half (the last pages stay open, late callers call later).

A call is right when the stored call record names the caller's own visitor (a second tab or a
return visit of the same visitor counts: it is the same person's journey); `same_visit` also
shows the strict share, a session of the very visit the call came from. Wrong: another visitor.
Unattributed: overflow or unattributed. The naive tracker (hands numbers out in turn, never
refuses, gives a call to the last visitor shown the number) sees the same page views, at the
same times, and the same callers dial the number it showed them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.attribution_daemon import (
    NO_SHARE,
    OVERFLOW,
    SITE,
    Daemon,
    PoolPolicy,
    agi_call,
    policy_keys_known,
    read_store,
)
from bench.attribution_score import Shown, score_ctgw, score_naive
from bench.attribution_traffic import (
    BOT_AGENT,
    HUMAN_AGENT,
    Traffic,
    Visit,
    make_traffic,
    peak_live,
)


@dataclass
class Config:
    seed: int
    multiple: float
    policy: PoolPolicy
    traffic: Traffic
    peak: int

    @property
    def size(self) -> int:
        return max(1, round(self.multiple * self.peak))


class Driver:
    """Plays one configuration's visitors and callers against one daemon, in real time."""

    def __init__(self, config: Config, daemon: Daemon, http: aiohttp.ClientSession) -> None:
        self.config, self.daemon, self.http = config, daemon, http
        self.shown = {v.index: Shown() for v in config.traffic.visits}
        self.linkedids: dict[int, str] = {}
        self.events: Counter[str] = Counter()
        self._t0 = 0.0
        self.late_ms = 0

    def now(self) -> float:
        return time.monotonic() - self._t0

    async def until(self, at: float) -> None:
        """Sleep until `at`; the worst lateness is kept (a loaded machine shifts the timings)."""
        await asyncio.sleep(max(0.0, at - self.now()))
        self.late_ms = max(self.late_ms, round((self.now() - at) * 1000))

    async def run(self) -> None:
        self._t0 = time.monotonic()
        traffic = self.config.traffic
        await asyncio.gather(
            *(self.visit(v) for v in traffic.visits),
            *(self.call(c.index, c.visit, c.at) for c in traffic.calls),
        )

    async def open_session(self, visit: Visit, tag: str) -> str:
        """POST /v1/sessions as swap.js does; the session id ('' when it failed)."""
        url = f"https://shop.example/landing?utm_source=google&utm_campaign=c{visit.index}{tag}"
        body = {"site": SITE, "url": url, "referrer": "https://www.google.com/"}
        if not visit.bot:
            body["visitor_id"] = visit.visitor_id
        agent = BOT_AGENT if visit.bot else HUMAN_AGENT
        try:
            async with self.http.post(
                f"{self.daemon.base}/v1/sessions", json=body, headers={"User-Agent": agent}
            ) as resp:
                if resp.status != 201:
                    self.events[f"session_{resp.status}"] += 1
                    return ""
                answer = await resp.json()
        except (aiohttp.ClientError, TimeoutError):
            self.events["session_error"] += 1
            return ""
        offer = answer["numbers"][0]
        self.events[f"{'bot' if visit.bot else 'shown'}_{offer['kind']}"] += 1
        self.shown[visit.index].add(self.now(), offer["number"], answer["session_id"])
        return str(answer["session_id"])

    async def heartbeat(self, session_id: str) -> int:
        try:
            async with self.http.post(
                f"{self.daemon.base}/v1/sessions/{session_id}/heartbeat",
                headers={"User-Agent": HUMAN_AGENT},
            ) as resp:
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            self.events["heartbeat_error"] += 1
            return 0

    async def visit(self, visit: Visit) -> None:
        """Land, heartbeat every 5 s while open; a second tab's session takes over the
        heartbeats (swap.js adopts the visitor's newer session); an ended lease opens a new one."""
        await self.until(visit.start)
        session = await self.open_session(visit, "")
        if visit.bot:
            return
        steps = [(t, "beat") for t in visit.heartbeats()]
        if visit.tab_at is not None:
            steps.append((visit.tab_at, "tab"))
        for at, step in sorted(steps):
            await self.until(at)
            if step == "tab":
                session = await self.open_session(visit, "-tab") or session
            elif session and await self.heartbeat(session) in (404, 410):
                self.events["renewed"] += 1
                session = await self.open_session(visit, "")

    async def call(self, index: int, visit: int, at: float) -> None:
        await self.until(at)
        caller = self.config.traffic.visits[visit].caller
        dialed = self.shown[visit].number_at(self.now())
        try:
            linkedid, call_id = await agi_call(
                self.daemon.agi_port, dialed, caller, f"Visitor {visit}"
            )
        except OSError:
            self.events["call_error"] += 1
            return
        self.linkedids[index] = linkedid
        self.events["calls_routed" if call_id else "calls_unrouted"] += 1


async def run_config(config: Config, keep: bool, tree: Path) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="ctgw-bench-attribution-"))
    daemon = Daemon(folder, config.size, config.policy, tree)
    await daemon.start()
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=64)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            driver = Driver(config, daemon, http)
            await driver.run()
    finally:
        await asyncio.to_thread(daemon.stop)
    stored, store_peak, overflows = read_store(daemon.db)
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "bench": "attribution",
        "seed": config.seed,
        "minutes": round(config.traffic.seconds / 60, 2),
        "multiple": config.multiple,
        "pool": config.size,
        "peak_live": config.peak,
        "peak_live_stored": store_peak,
        "policy": config.policy.label,
        "calls": len(config.traffic.calls),
        "visits": sum(not v.bot for v in config.traffic.visits),
        "overflows": overflows,
        "events": dict(sorted(driver.events.items())),
        "max_late_ms": driver.late_ms,
        "ctgw": score_ctgw(config.traffic, driver.shown, driver.linkedids, stored).summary(),
        "naive": score_naive(config.traffic, config.size).summary(naive=True),
        "folder": str(folder) if keep else None,
    }


def print_table(results: list[dict[str, object]]) -> None:
    print(
        f"\n{'seed':>4} {'x peak':>6} {'pool':>5} {'peak':>5} {'policy':<10} {'calls':>5} |"
        f" {'ctgw right':>10} {'wrong':>6} {'unattr':>6} {'probable (right)':>17} |"
        f" {'naive right':>11} {'wrong':>6}"
    )
    for r in results:
        c, n = r["ctgw"], r["naive"]
        assert isinstance(c, dict) and isinstance(n, dict)
        prob = f"{c['probable']} ({c['probable_right'] if c['probable'] else '-'} %)"
        print(
            f"{r['seed']:>4} {r['multiple']:>6} {r['pool']:>5} {r['peak_live']:>5}"
            f" {r['policy']!s:<10} {r['calls']:>5} | {c['right']:>9} % {c['wrong']:>4} %"
            f" {c['unattributed']:>4} % {prob:>17} | {n['right']:>9} % {n['wrong']:>4} %"
        )


def _policies(args: argparse.Namespace) -> list[PoolPolicy]:
    known = policy_keys_known(args.tree)
    policies = []
    for name in [p for p in args.policy.split(",") if p] or [""]:
        given = name or args.min_cooldown is not None or args.dial_delay is not None
        if given and not known and name != "overflow":
            raise SystemExit("this tree's config has no per-pool policy keys (when_exhausted)")
        # Without the keys, `overflow` is what the pool does anyway: write nothing.
        policy = name.removesuffix(NO_SHARE) if known else ""
        share = False if name.endswith(NO_SHARE) else None
        policies.append(PoolPolicy(policy, args.min_cooldown, args.dial_delay, share))
    return policies


async def run_all(args: argparse.Namespace) -> list[dict[str, object]]:
    configs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        traffic = make_traffic(seed, args.minutes, args.rate, args.late_share)
        peak = peak_live(traffic)
        print(
            f"seed {seed}: {sum(not v.bot for v in traffic.visits)} visits, "
            f"{len(traffic.calls)} calls, peak live leases {peak}, run {traffic.end:.0f} s",
            flush=True,
        )
        for multiple in (float(m) for m in args.sizes.split(",")):
            for policy in _policies(args):
                configs.append(Config(seed, multiple, policy, traffic, peak))
    slots = asyncio.Semaphore(args.jobs)

    async def one(config: Config) -> dict[str, object]:
        async with slots:
            result = await run_config(config, args.keep, args.tree)
        print(json.dumps(result), flush=True)
        return result

    return list(await asyncio.gather(*(one(c) for c in configs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", default="1", help="comma-separated seeds")
    parser.add_argument("--sizes", default="0.8,1.0,1.2,2.0", help="pool sizes, x peak live")
    parser.add_argument(
        "--policy",
        default="",
        help="when_exhausted: reuse, overflow, reuse-noshare (share_called_numbers off), or several",
    )
    parser.add_argument("--min-cooldown", type=int, help="min_cooldown_seconds (when given)")
    parser.add_argument("--dial-delay", type=int, help="dial_delay_seconds (when given)")
    parser.add_argument("--minutes", type=float, default=4.0, help="minutes of arrivals")
    parser.add_argument(
        "--late-share", type=float, help="share of callers who call late (default 0.20)"
    )
    parser.add_argument("--rate", type=float, default=1.0, help="scales the arrival rates")
    parser.add_argument("--jobs", type=int, default=4, help="configurations run side by side")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder and store")
    parser.add_argument(
        "--tree",
        type=Path,
        default=Path(__file__).resolve().parents[1],
        help="project tree whose gateway runs (e.g. `git archive HEAD` unpacked)",
    )
    args = parser.parse_args()
    results = asyncio.run(run_all(args))
    print_table(results)
    print(
        "right: the caller's own visitor (same_visit in the JSON: that very visit); "
        f"unattributed: overflow ({OVERFLOW}) or none; naive: same page views and callers."
    )


if __name__ == "__main__":
    main()
