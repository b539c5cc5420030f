"""Seeded visitors and callers with known truth, for bench/attribution.py; and the naive tracker.

Times are seconds from the start of a run. Timings are the issue's, scaled down: heartbeat 5 s,
grace 15 s, cooldown 30 s, attribution window 60 s. Nothing here talks to the daemon.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "CALL_KINDS",
    "COOLDOWN",
    "GRACE",
    "HEARTBEAT",
    "WINDOW",
    "NaiveTracker",
    "PlannedCall",
    "Traffic",
    "Visit",
    "call_kinds",
    "make_traffic",
    "peak_live",
]

HEARTBEAT = 5.0
GRACE = 15.0
COOLDOWN = 30.0
WINDOW = 60.0

# Arrival rate levels (human and bot visits a second, times --rate) the ad traffic steps
# between, and how long a step lasts.
RATE_LEVELS = (0.4, 1.0, 2.0, 3.0)
STEP_SECONDS = (20.0, 50.0)
BOT_SHARE = 0.10
BOUNCE_SHARE = 0.25  # visits that leave within seconds, often before their first heartbeat
MEAN_DWELL = 35.0
MAX_DWELL = 150.0
TAB_SHARE = 0.15  # visits that open a second tab with new campaign tags: a second session
RETURN_SHARE = 0.20  # visitors that come back later with the same visitor id
RETURN_AFTER = (20.0, 120.0)
CALL_SHARE = 0.5  # human visits whose visitor calls
# (kind, share): on the page, just after leaving (before the lease ends), late (within the
# attribution window after the last heartbeat).
CALL_KINDS = (("in_session", 0.55), ("just_after", 0.25), ("late", 0.20))
REPEAT_SHARE = 0.10  # callers who call the same visit's number again a little later
BOT_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HUMAN_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


@dataclass
class Visit:
    """One page visit: a visitor's sessions from landing to closing the page (truth)."""

    index: int
    visitor_id: str
    caller: str  # the visitor's own phone number: the same on every visit and call
    start: float
    close: float
    bot: bool = False
    tab_at: float | None = None  # a second tab opens a new session (same visitor) then
    returning: bool = False

    def heartbeats(self) -> list[float]:
        """When the page sends heartbeats: every HEARTBEAT seconds while it is open."""
        count = int((self.close - self.start) // HEARTBEAT)
        return [self.start + HEARTBEAT * (k + 1) for k in range(count)]

    @property
    def last_seen(self) -> float:
        """The last sign of life: the last heartbeat, or the landing when there was none."""
        beats = self.heartbeats()
        return beats[-1] if beats else self.start


@dataclass(frozen=True)
class PlannedCall:
    """A call to be placed: the visit it belongs to (truth), when, and of which kind."""

    index: int
    visit: int
    at: float
    kind: str


@dataclass
class Traffic:
    seed: int
    seconds: float
    visits: list[Visit] = field(default_factory=list)
    calls: list[PlannedCall] = field(default_factory=list)

    @property
    def end(self) -> float:
        """When the last visit or call is over."""
        return max([v.close for v in self.visits] + [c.at for c in self.calls] + [0.0])


def _rate_steps(rng: random.Random, seconds: float, scale: float) -> list[tuple[float, float]]:
    steps: list[tuple[float, float]] = []
    at = 0.0
    while at < seconds:
        steps.append((at, rng.choice(RATE_LEVELS) * scale))
        at += rng.uniform(*STEP_SECONDS)
    return steps


def _arrivals(rng: random.Random, seconds: float, scale: float) -> list[float]:
    """Poisson arrivals whose rate steps up and down (bursts of ad traffic)."""
    steps = _rate_steps(rng, seconds, scale)
    times: list[float] = []
    for i, (begin, rate) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else seconds
        at = begin + rng.expovariate(rate)
        while at < end:
            times.append(at)
            at += rng.expovariate(rate)
    return times


def _dwell(rng: random.Random) -> float:
    if rng.random() < BOUNCE_SHARE:
        return rng.uniform(2.0, 8.0)
    return min(MAX_DWELL, 5.0 + rng.expovariate(1 / MEAN_DWELL))


def call_kinds(late_share: float) -> tuple[tuple[str, float], ...]:
    """CALL_KINDS with `late_share` of late callers, the others in their usual proportion."""
    late = dict(CALL_KINDS)["late"]
    scale = (1.0 - late_share) / (1.0 - late)
    return tuple((k, late_share if k == "late" else s * scale) for k, s in CALL_KINDS)


def _call_kind(rng: random.Random, kinds: tuple[tuple[str, float], ...]) -> str:
    pick = rng.random()
    for kind, share in kinds:
        if pick < share:
            return kind
        pick -= share
    return kinds[-1][0]


def _call_time(rng: random.Random, visit: Visit, kind: str) -> float:
    if kind == "in_session":  # the number is read and dialed while the page is open
        return rng.uniform(min(visit.start + 2.0, visit.close), visit.close)
    if kind == "just_after":  # after closing the page, before the lease ends
        return rng.uniform(visit.close, visit.last_seen + GRACE)
    return rng.uniform(visit.last_seen + GRACE, visit.last_seen + WINDOW)


def _human_visit(rng: random.Random, index: int, visitor: int, seed: int, at: float) -> Visit:
    close = at + _dwell(rng)
    visit = Visit(index, f"s{seed}v{visitor:08d}", f"+1202555{visitor % 10000:04d}", at, close)
    if close - at > 3.0 and rng.random() < TAB_SHARE:
        visit.tab_at = rng.uniform(at + 1.0, close - 1.0)
    return visit


def make_traffic(
    seed: int, minutes: float, rate: float = 1.0, late_share: float | None = None
) -> Traffic:
    """The visits and calls of one seeded run of `minutes` of arrivals (calls may come later);
    `late_share` replaces the share of late callers (CALL_KINDS) when given."""
    rng = random.Random(seed)
    seconds = minutes * 60.0
    traffic = Traffic(seed, seconds)
    returns: list[tuple[float, Visit]] = []
    visitors = 0
    for at in _arrivals(rng, seconds, rate):
        if rng.random() < BOT_SHARE:
            traffic.visits.append(Visit(len(traffic.visits), "", "", at, at + 1.0, bot=True))
            continue
        visitors += 1
        visit = _human_visit(rng, len(traffic.visits), visitors, seed, at)
        traffic.visits.append(visit)
        if rng.random() < RETURN_SHARE:
            back = visit.close + rng.uniform(*RETURN_AFTER)
            if back < seconds:
                returns.append((back, visit))
    for back, first in returns:
        again = _human_visit(rng, len(traffic.visits), 0, seed, back)
        again.visitor_id, again.caller, again.returning = first.visitor_id, first.caller, True
        traffic.visits.append(again)
    kinds = CALL_KINDS if late_share is None else call_kinds(late_share)
    _plan_calls(rng, traffic, kinds)
    return traffic


def _plan_calls(rng: random.Random, traffic: Traffic, kinds: tuple[tuple[str, float], ...]) -> None:
    planned: list[tuple[float, int, str]] = []
    for visit in traffic.visits:
        if visit.bot or rng.random() >= CALL_SHARE:
            continue
        kind = _call_kind(rng, kinds)
        at = _call_time(rng, visit, kind)
        planned.append((at, visit.index, kind))
        if rng.random() < REPEAT_SHARE:
            planned.append((at + rng.uniform(5.0, 30.0), visit.index, "repeat"))
    planned.sort()
    traffic.calls = [PlannedCall(i, v, at, kind) for i, (at, v, kind) in enumerate(planned)]


def peak_live(traffic: Traffic) -> int:
    """The most leases live at once with a pool that never runs out: one per visit on the page
    or within the grace after its last heartbeat (a second tab keeps the visitor's number)."""
    edges: list[tuple[float, int]] = []
    for visit in traffic.visits:
        if not visit.bot:
            edges += [(visit.start, 1), (visit.last_seen + GRACE, -1)]
    live = peak = 0
    for _, step in sorted(edges):
        live += step
        peak = max(peak, live)
    return peak


class NaiveTracker:
    """Hands numbers out in turn, never refuses, and gives a call to the last visitor shown
    the number. It skips bot user agents as ctgw does (the kindest reading of a naive tracker)."""

    def __init__(self, numbers: Iterable[str]) -> None:
        self.numbers = list(numbers)
        self._next = 0
        self._shown: dict[str, tuple[list[float], list[str]]] = {}

    def show(self, visitor_id: str, at: float) -> str:
        """A page view: the next number in turn (times must come in order)."""
        number = self.numbers[self._next % len(self.numbers)]
        self._next += 1
        times, visitors = self._shown.setdefault(number, ([], []))
        times.append(at)
        visitors.append(visitor_id)
        return number

    def attribute(self, number: str, at: float) -> str:
        """The visitor last shown `number` by `at`, or '' when nobody was."""
        times, visitors = self._shown.get(number, ([], []))
        i = bisect.bisect_right(times, at)
        return visitors[i - 1] if i else ""
