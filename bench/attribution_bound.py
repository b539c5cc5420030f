"""How few wrong calls any tracker can make on bench/attribution.py's traffic with a pool of a
given size: a lower bound, and an ideal tracker to see how close to it one can get.

  .venv/bin/python bench/attribution_bound.py [--seeds 1,4,5] [--sizes 1.2,1.3,1.4,1.5]
      [--resamples 20]

The bound. A tracker sees landings, heartbeats and calls with caller ids, and knows the
traffic's rules (bench/attribution_model.py); grant it more: the true visitor of every call
already made (so a phone that called before is always told apart). A call from a new phone
on a number at instant t comes from one of the silent visits shown that number, each with
its first-call hazard h_i(t) given what was seen; the best guess is the largest, and it is
wrong with probability (sum - max) / sum. So the rate of wrong (or unattributed) calls at t
is, summed over numbers, (sum of hazards - the largest). Whatever visits share which numbers,
with N numbers at most N hazards can be the largest of their number, so the rate is at least

    sum of all silent visits' hazards - the sum of the N largest,

and no way of handing out numbers, even one that could move a visit to another number at any
instant, does better: integrated over the run, a lower bound on the expected wrong plus
unattributed calls (an overflowed visit's calls are unattributed: counted too). It is computed
on the run's visits with the calls drawn afresh `--resamples` times (the visits stay; the
expectation is over who calls when).

The ideal tracker: hands each new visit the number whose earlier holders are least likely still
to call (model hazards, the true past callers), keeps a visit's number for the visit, gives a
returning visitor its own number back when nobody else took it, and decides each call by the
largest model hazard (a known phone: its visitor). Realised wrong calls and expected ones.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.attribution_model import hazard_seen, silent_share
from bench.attribution_traffic import (
    CALL_KINDS,
    GRACE,
    HEARTBEAT,
    WINDOW,
    Traffic,
    Visit,
    _plan_calls,
    make_traffic,
    peak_live,
)

DT = 0.1  # seconds per step of the bound's integral


@cache
def _hazard(u4: int, beats: int, closed: bool) -> float:
    return hazard_seen(u4 / 4.0, beats, closed)


@cache
def _silent(u4: int, beats: int, closed: bool) -> float:
    return silent_share(u4 / 4.0, beats, closed)


def seen(v: Visit, at: float) -> tuple[int, int, bool]:
    """What a tracker saw of visit `v` at `at`: (u in quarter seconds, heartbeats, closed)."""
    beats_all = v.heartbeats()
    beats = sum(1 for b in beats_all if b <= at)
    closed = beats == len(beats_all) and v.start + HEARTBEAT * (beats + 1) <= at
    return round((at - v.start) * 4), beats, closed


def hazard(v: Visit, at: float) -> float:
    return _hazard(*seen(v, at))


def resample(traffic: Traffic, rng: random.Random) -> Traffic:
    """The same visits, calls drawn afresh by the traffic's own rules."""
    fresh = Traffic(traffic.seed, traffic.seconds, traffic.visits, [])
    _plan_calls(rng, fresh, CALL_KINDS)
    return fresh


def _first_calls(traffic: Traffic) -> dict[str, float]:
    """Per visitor, when its first call comes (a visitor calls from one phone)."""
    first: dict[str, float] = {}
    for call in traffic.calls:
        vid = traffic.visits[call.visit].visitor_id
        first[vid] = min(first.get(vid, call.at), call.at)
    return first


def lower_bound(traffic: Traffic, size: int) -> float:
    """The expected wrong + unattributed calls no tracker with `size` numbers avoids, on this
    draw of the calls (the compensator of the bound's rate along the draw)."""
    first = _first_calls(traffic)
    humans = [v for v in traffic.visits if not v.bot]
    # A visit can get a first call from landing to its last heartbeat + WINDOW.
    spans = sorted((v.start, v.last_seen + WINDOW, v) for v in humans)
    active: list[tuple[float, int, Visit]] = []
    k = 0
    total = 0.0
    t = 0.0
    end = max(e for _, e, _ in spans)
    while t < end:
        while k < len(spans) and spans[k][0] <= t:
            heapq.heappush(active, (spans[k][1], spans[k][2].index, spans[k][2]))
            k += 1
        while active and active[0][0] <= t:
            heapq.heappop(active)
        by_visitor: dict[str, float] = {}
        for _, _, v in active:
            if first.get(v.visitor_id, float("inf")) <= t:
                continue  # called already: its next call comes from a known phone
            h = hazard(v, t)
            if h > 0:
                by_visitor[v.visitor_id] = by_visitor.get(v.visitor_id, 0.0) + h
        hs = list(by_visitor.values())
        if len(hs) > size:
            total += (sum(hs) - sum(heapq.nlargest(size, hs))) * DT
        t += DT
    return total


@dataclass
class Ideal:
    wrong: int = 0
    unattributed: int = 0
    expected_wrong: float = 0.0
    calls: int = 0


def _events(traffic: Traffic) -> Iterator[tuple[float, int, int]]:
    events = [(v.start, 0, v.index) for v in traffic.visits if not v.bot]
    events += [(c.at, 1, c.index) for c in traffic.calls]
    yield from sorted(events)


def ideal(traffic: Traffic, size: int, *, live_free: bool = True, oracle: bool = True) -> Ideal:
    """The ideal tracker described above, on this draw of the calls.

    `live_free=False`: never hands out a number whose holder's page may still be open (a
    heartbeat within the last GRACE seconds), as ctgw never double-leases. `oracle=False`: it
    knows a phone's visitor only from its own earlier decision (as ctgw does), not the truth.
    """
    holders: list[list[Visit]] = [[] for _ in range(size)]
    number_of: dict[int, int] = {}
    last_number: dict[str, int] = {}
    called: set[str] = set()  # visitors whose phone is known
    phone_of: dict[str, str] = {}  # phone -> the visitor its calls go to
    out = Ideal()

    def live(u: Visit, at: float) -> bool:
        beats = [b for b in u.heartbeats() if b <= at]
        return at < (beats[-1] if beats else u.start) + GRACE

    def risk(n: int, at: float, visitor: str) -> float:
        r = 0.0
        for u in holders[n]:
            if u.visitor_id == visitor:
                continue
            if not live_free and live(u, at):
                return float("inf")
            if u.visitor_id in called or at >= u.last_seen + WINDOW:
                continue
            r += _silent(*seen(u, at))
        return r

    for at, kind, index in _events(traffic):
        if kind == 0:
            v = traffic.visits[index]
            mine = last_number.get(v.visitor_id)
            best = min(range(size), key=lambda n: (risk(n, at, v.visitor_id), n != mine))
            if risk(best, at, v.visitor_id) == float("inf"):
                continue  # overflow: nothing free
            number_of[index] = best
            holders[best] = [u for u in holders[best] if at < u.last_seen + WINDOW] + [v]
            last_number[v.visitor_id] = best
            continue
        call = traffic.calls[index]
        truth = traffic.visits[call.visit]
        out.calls += 1
        n = number_of.get(call.visit)
        if n is None:
            out.unattributed += 1
            continue
        if truth.caller in phone_of:
            out.wrong += phone_of[truth.caller] != truth.visitor_id
            continue
        weights: dict[str, float] = {}
        for u in holders[n]:
            if u.visitor_id in called or not u.start <= at < u.last_seen + WINDOW:
                continue
            weights[u.visitor_id] = weights.get(u.visitor_id, 0.0) + hazard(u, at)
        total = sum(weights.values())
        if total <= 0:
            guess = truth.visitor_id if truth.visitor_id in weights else ""
        else:
            guess = max(weights, key=lambda w: weights[w])
            out.expected_wrong += 1 - weights[guess] / total
        out.wrong += guess != truth.visitor_id
        who = truth.visitor_id if oracle else guess
        if who:
            called.add(who)
            phone_of[truth.caller] = who
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", default="1,4,5")
    parser.add_argument("--sizes", default="1.2,1.3,1.4,1.5")
    parser.add_argument("--resamples", type=int, default=20)
    parser.add_argument("--no-ideal", action="store_true")
    parser.add_argument("--no-double", action="store_true", help="ideal: never a live number")
    parser.add_argument(
        "--no-oracle", action="store_true", help="ideal: phones from its own guesses"
    )
    args = parser.parse_args()
    print(
        f"{'seed':>4} {'x':>4} {'pool':>4} {'calls':>6} | bound: wrong+unattr % (per draw: min-max)"
        " | ideal tracker: wrong % realised / expected"
    )
    for seed in (int(s) for s in args.seeds.split(",")):
        traffic = make_traffic(seed, 4.0)
        peak = peak_live(traffic)
        draws = [traffic] + [
            resample(traffic, random.Random(f"{seed}-{k}")) for k in range(args.resamples)
        ]
        for multiple in (float(m) for m in args.sizes.split(",")):
            size = max(1, round(multiple * peak))
            bounds = [100 * lower_bound(d, size) / len(d.calls) for d in draws]
            mean_calls = sum(len(d.calls) for d in draws) / len(draws)
            line = (
                f"{seed:>4} {multiple:>4} {size:>4} {mean_calls:>6.0f} |"
                f" {sum(bounds) / len(bounds):5.2f} ({min(bounds):.2f}-{max(bounds):.2f})"
                f" this run {bounds[0]:.2f}"
            )
            if not args.no_ideal:
                runs = [
                    ideal(d, size, live_free=not args.no_double, oracle=not args.no_oracle)
                    for d in draws
                ]
                real = [100 * r.wrong / r.calls for r in runs]
                unat = [100 * r.unattributed / r.calls for r in runs]
                exp = [100 * r.expected_wrong / r.calls for r in runs]
                line += (
                    f" | {sum(real) / len(real):5.2f} / {sum(exp) / len(exp):5.2f}"
                    f" (this run {real[0]:.2f} / {exp[0]:.2f}), unattr {sum(unat) / len(unat):.2f}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
