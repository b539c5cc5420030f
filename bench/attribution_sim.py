"""bench/attribution.py's traffic played in-process through the real numberpool `Site`/`Pool`,
with the traffic's own times as the clock: no daemon, no HTTP, no real time (a run takes a
fraction of a second), so many seeds and sizes can be tried, and a rule change compared.

  .venv/bin/python bench/attribution_sim.py [--seeds 1-20] [--sizes 1.2,1.3] [--policy reuse]
      [--late-share 0.2] [--json]

It plays what bench/attribution.py's Driver plays (landing, second tab, heartbeats every 5 s, a
new session when a heartbeat finds the lease ended, each call dialing the number on the page)
and attributes calls as the gateway's route does (`Site.attribute` with the visitors the
caller's latest 5 attributed calls went to). What it leaves out: the daemon's timing jitter and
its store; so its figures are close to, not equal to, the daemon's (compare with --seeds of a
bench run). Scoring is bench/attribution_score.py's: right = the caller's own visitor.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.attribution_daemon import NO_SHARE, OVERFLOW, TARGET, pool_numbers
from bench.attribution_score import score_naive
from bench.attribution_traffic import (
    COOLDOWN,
    GRACE,
    HEARTBEAT,
    WINDOW,
    Traffic,
    make_traffic,
    peak_live,
)
from numberpool.lease import Lease
from numberpool.pool import LeaseRules, Pool
from numberpool.site import AttributionKind, Site

__all__ = ["SimCall", "SimResult", "rules_for", "simulate"]

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_KNOWN_CALLS = 5  # route.py: the visitors of the caller's latest 5 attributed calls


def rules_for(policy: str = "reuse") -> LeaseRules:
    """The bench's pool config (attribution_daemon._config) as LeaseRules; a policy ending in
    "-noshare" turns share_called off."""
    return LeaseRules(
        heartbeat=timedelta(seconds=HEARTBEAT),
        grace=timedelta(seconds=GRACE),
        probation=timedelta(seconds=GRACE),
        cooldown=timedelta(seconds=COOLDOWN),
        attribution_window=timedelta(seconds=WINDOW),
        when_exhausted=policy.removesuffix(NO_SHARE),
        share_called=not policy.endswith(NO_SHARE),
    )


def clock(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True)
class SimCall:
    """One call as decided: truth and the attribution."""

    index: int
    visit: int
    at: float
    kind: str  # the traffic's kind (in_session, just_after, late, repeat)
    dialed: str
    credited: str  # visitor id credited ('' when none)
    attribution: str  # active, probable, overflow, unattributed
    confidence: float
    rival: str
    verdict: str  # right, wrong, unattributed


@dataclass
class SimResult:
    seed: int
    size: int
    peak: int
    calls: list[SimCall] = field(default_factory=list)
    # Every lease as it ended (heartbeats and cuts applied), with the visit it was for.
    leases: dict[str, tuple[int, Lease]] = field(default_factory=dict)
    reused: int = 0
    overflowed: int = 0

    def counts(self) -> Counter[str]:
        return Counter(c.verdict for c in self.calls)

    def pct(self) -> dict[str, float]:
        n = len(self.calls) or 1
        counts = self.counts()
        return {k: round(100.0 * counts[k] / n, 2) for k in ("right", "wrong", "unattributed")}


_LAND, _TAB, _BEAT, _CALL = 0, 1, 2, 3


def simulate(
    traffic: Traffic, size: int, rules: LeaseRules, second_phone: float = 0.0
) -> SimResult:
    """Play `traffic` against a pool of `size` numbers under `rules`; `second_phone` of the
    repeat calls come from another phone of the caller's (a phone nobody knows yet)."""
    pool = Pool("bench", TARGET, pool_numbers(size), rules, overflow=OVERFLOW)
    site = Site("bench", pools=[pool])
    result = SimResult(traffic.seed, size, peak_live(traffic))
    events: list[tuple[float, int, int, int]] = []  # at, kind, order, index
    for v in traffic.visits:
        if v.bot:
            continue  # a bot's page is shown the site's number and never calls
        events.append((v.start, _LAND, v.index, v.index))
        if v.tab_at is not None:
            events.append((v.tab_at, _TAB, v.index, v.index))
        events += [(t, _BEAT, v.index, v.index) for t in v.heartbeats()]
    events += [(c.at, _CALL, c.index, c.index) for c in traffic.calls]
    heapq.heapify(events)
    shown: dict[int, list[tuple[float, str]]] = {}
    session_of: dict[int, tuple[str, str]] = {}  # visit -> (session id, its number)
    sessions = 0
    history: dict[str, list[str]] = {}  # caller -> visitors credited, newest last
    last_prune = 0.0

    def open_session(visit: int, at: float) -> None:
        nonlocal sessions
        sessions += 1
        session_id = f"s{sessions}"
        v = traffic.visits[visit]
        lease = pool.lease(session_id, session_id, v.visitor_id, clock(at))
        number = lease.number if lease else OVERFLOW
        if lease is None:
            result.overflowed += 1
        else:
            result.leases[lease.lease_id] = (visit, lease)
            cut = pool.superseded_by(lease)
            if cut is not None:
                result.leases[cut.lease_id] = (result.leases[cut.lease_id][0], cut)
        session_of[visit] = (session_id, number if lease else "")
        shown.setdefault(visit, []).append((at, number))

    while events:
        at, kind, _, index = heapq.heappop(events)
        if at - last_prune > 30.0:
            pool.prune(clock(at))
            last_prune = at
        if kind in (_LAND, _TAB):
            open_session(index, at)
        elif kind == _BEAT:
            session_id, number = session_of[index]
            renewed = pool.heartbeat(number, session_id, clock(at)) if number else None
            if renewed is not None:
                result.leases[renewed.lease_id] = (index, renewed)
            elif number:
                open_session(index, at)  # 410: swap.js opens a new session
        else:
            caller = _caller(traffic, index, second_phone)
            result.calls.append(_call(traffic, index, at, shown, site, history, caller))
    result.reused = pool.reused_count
    return result


def _caller(traffic: Traffic, index: int, second_phone: float) -> str:
    """The phone a call comes from: the visitor's own, or for a repeat call drawn (seeded by
    the run and the call) within `second_phone`, another of theirs."""
    call = traffic.calls[index]
    own = traffic.visits[call.visit].caller
    if call.kind != "repeat" or second_phone <= 0.0:
        return own
    draw = random.Random(f"{traffic.seed}:{index}").random()
    return own + "2" if draw < second_phone else own  # one digit longer: nobody else's


def _call(
    traffic: Traffic,
    index: int,
    at: float,
    shown: dict[int, list[tuple[float, str]]],
    site: Site,
    history: dict[str, list[str]],
    caller: str,
) -> SimCall:
    call = traffic.calls[index]
    truth = traffic.visits[call.visit]
    dialed = TARGET
    for when, number in shown.get(call.visit, []):
        if when <= at:
            dialed = number
    known = frozenset(history.get(caller, [])[-_KNOWN_CALLS:])
    found = site.attribute(dialed, clock(at), known_visitors=known, caller=caller)
    attributed = found.kind in (AttributionKind.ACTIVE, AttributionKind.PROBABLE)
    if attributed and found.visitor_id:
        history.setdefault(caller, []).append(found.visitor_id)
    if not attributed:
        verdict = "unattributed"
    else:
        verdict = "right" if found.visitor_id == truth.visitor_id else "wrong"
    return SimCall(
        index,
        call.visit,
        at,
        call.kind,
        dialed,
        found.visitor_id if attributed else "",
        str(found.kind),
        found.confidence,
        found.other_visitor_id,
        verdict,
    )


def seeds_arg(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", default="1,4,5", help="e.g. 1-20 or 1,4,5")
    parser.add_argument("--sizes", default="1.2", help="pool sizes, x peak live")
    parser.add_argument("--policy", default="reuse")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--late-share", type=float)
    parser.add_argument(
        "--second-phone", type=float, default=0.0, help="share of repeat calls from another phone"
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per run")
    args = parser.parse_args()
    rules = rules_for(args.policy)
    print(f"{'seed':>4} {'x':>4} {'pool':>4} {'calls':>5} | right  wrong  unattr | naive r / w")
    for multiple in (float(m) for m in args.sizes.split(",")):
        totals: Counter[str] = Counter()
        for seed in seeds_arg(args.seeds):
            traffic = make_traffic(seed, args.minutes, 1.0, args.late_share)
            size = max(1, round(multiple * peak_live(traffic)))
            result = simulate(traffic, size, rules, args.second_phone)
            pct, naive = result.pct(), score_naive(traffic, size).summary(naive=True)
            totals.update(result.counts())
            if args.json:
                print(json.dumps({"seed": seed, "multiple": multiple, "pool": size, **pct}))
            print(
                f"{seed:>4} {multiple:>4} {size:>4} {len(result.calls):>5} |"
                f" {pct['right']:>6} {pct['wrong']:>5} {pct['unattributed']:>5} |"
                f" {naive['right']} / {naive['wrong']}"
            )
        n = sum(totals.values()) or 1
        print(
            f"all  {multiple:>4}      {n:>5} | {100 * totals['right'] / n:6.2f}"
            f" {100 * totals['wrong'] / n:5.2f} {100 * totals['unattributed'] / n:5.2f}"
        )


if __name__ == "__main__":
    main()
