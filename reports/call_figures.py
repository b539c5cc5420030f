"""The figures of a site's calls: a summary against the period before, breakdowns by each
dimension in first- or last-touch view, calls per day, the hour x weekday grid, per agent.

Pure: the calls come in as `ReportCall`s (reports/call_rows.py); spam and test calls are left
out of every figure before anything is counted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from reports.call_rows import SESSION_DIMENSIONS, ReportCall
from reports.period import Period

__all__ = [
    "DIMENSIONS",
    "TOUCHES",
    "AgentRow",
    "BreakdownRow",
    "Change",
    "DayRow",
    "Summary",
    "Tally",
    "agent_rows",
    "breakdown",
    "breakdown_rows",
    "compare",
    "dimension_value",
    "hour_weekday",
    "per_agent",
    "per_day",
    "summary",
    "summary_of",
]

# What a visit has before any call (SESSION_DIMENSIONS), then what only the call has.
DIMENSIONS = (*SESSION_DIMENSIONS, "kind", "tracking_number", "static_source")
TOUCHES = ("last", "first")


@dataclass
class Tally:
    """Counts of a group of calls, added one call at a time or a counted group at a time."""

    calls: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    first_time: int = 0
    ring_total: float = 0.0
    rung: int = 0
    talk_total: float = 0.0
    talked: int = 0

    def add(self, call: ReportCall) -> None:
        self.calls += 1
        if call.state == "answered":
            self.answered += 1
            if call.talk_seconds is not None:
                self.talk_total += call.talk_seconds
                self.talked += 1
        elif call.state == "missed":
            self.missed += 1
        elif call.state == "abandoned":
            self.abandoned += 1
        self.first_time += call.first_time
        if call.ring_seconds is not None:
            self.ring_total += call.ring_seconds
            self.rung += 1

    def add_group(
        self,
        state: str,
        calls: int,
        first_time: int,
        ring: tuple[float, int],
        talk: tuple[float, int],
    ) -> None:
        """Add `calls` calls of one state counted elsewhere (SQL): the first-time ones among
        them, and (total, how many) of ring seconds and of an answered call's talk seconds."""
        self.calls += calls
        if state == "answered":
            self.answered += calls
            self.talk_total += talk[0]
            self.talked += talk[1]
        elif state == "missed":
            self.missed += calls
        elif state == "abandoned":
            self.abandoned += calls
        self.first_time += first_time
        self.ring_total += ring[0]
        self.rung += ring[1]

    @property
    def avg_ring(self) -> float | None:
        return self.ring_total / self.rung if self.rung else None

    @property
    def avg_talk(self) -> float | None:
        """Over answered calls: an unanswered call has no talk time to average."""
        return self.talk_total / self.talked if self.talked else None


def _per_100(calls: int, visits: int | None) -> float | None:
    return calls * 100 / visits if visits else None


def _per_call(cost: float | None, calls: int) -> float | None:
    return cost / calls if cost is not None and calls else None


@dataclass(frozen=True)
class Summary:
    """The headline figures of a period."""

    calls: int
    answered: int
    missed: int
    abandoned: int
    first_time: int
    avg_ring_seconds: float | None
    avg_talk_seconds: float | None
    visits: int
    calls_per_100_visits: float | None
    cost: float | None
    cost_per_call: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """One figure against the previous period; percent None when the previous was 0 or none."""

    value: float | None
    previous: float | None
    delta: float | None
    percent: float | None


@dataclass(frozen=True)
class BreakdownRow:
    """The calls of one value of a dimension (visits and cost None where not known)."""

    value: str
    calls: int
    answered: int
    missed: int
    abandoned: int
    first_time: int
    avg_ring_seconds: float | None
    avg_talk_seconds: float | None
    visits: int | None
    calls_per_100_visits: float | None
    cost: float | None
    cost_per_call: float | None


@dataclass(frozen=True)
class DayRow:
    """One day of the period in the site's zone; by_source counts calls by last-touch source."""

    day: date
    calls: int
    answered: int
    missed: int
    abandoned: int
    by_source: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentRow:
    agent: str
    calls: int
    answered: int
    missed: int
    abandoned: int
    talk_seconds: float
    avg_talk_seconds: float | None


def _counted(calls: Iterable[ReportCall]) -> Iterable[ReportCall]:
    return (call for call in calls if call.counted)


def summary(calls: Iterable[ReportCall], *, visits: int, cost: float | None) -> Summary:
    """The period's figures; `cost` None when no campaign cost was entered for it."""
    tally = Tally()
    for call in _counted(calls):
        tally.add(call)
    return summary_of(tally, visits=visits, cost=cost)


def summary_of(tally: Tally, *, visits: int, cost: float | None) -> Summary:
    """The figures of the period's counted calls `tally`."""
    return Summary(**_figures(tally, visits, cost))


def _figures(tally: Tally, visits: int | None, cost: float | None) -> dict[str, Any]:
    """A summary's or a breakdown row's figures (visits and cost None where not known)."""
    return {
        "calls": tally.calls,
        "answered": tally.answered,
        "missed": tally.missed,
        "abandoned": tally.abandoned,
        "first_time": tally.first_time,
        "avg_ring_seconds": tally.avg_ring,
        "avg_talk_seconds": tally.avg_talk,
        "visits": visits,
        "calls_per_100_visits": _per_100(tally.calls, visits),
        "cost": cost,
        "cost_per_call": _per_call(cost, tally.calls),
    }


def compare(current: Summary, previous: Summary) -> dict[str, Change]:
    """Each figure of `current` beside the same figure of `previous`."""
    changes: dict[str, Change] = {}
    now, before = current.as_dict(), previous.as_dict()
    for name, value in now.items():
        old = before[name]
        delta = value - old if value is not None and old is not None else None
        percent = delta * 100 / old if delta is not None and old else None
        changes[name] = Change(value, old, delta, percent)
    return changes


def dimension_value(call: ReportCall, by: str, touch: str = "last") -> str:
    """The value of dimension `by` for `call` in the first- or last-touch view."""
    if by == "tracking_number":
        return call.dialed
    return str(getattr(call.touch(touch), by))


def breakdown(
    calls: Iterable[ReportCall],
    by: str,
    *,
    touch: str = "last",
    visits: Mapping[str, int] | None = None,
    costs: Mapping[str, float] | None = None,
) -> list[BreakdownRow]:
    """The calls by each value of `by`, most calls first. A value with visits or a cost and no
    call is listed too: a paid campaign that made no call is what a marketer looks for."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r} (known: {', '.join(DIMENSIONS)})")
    if touch not in TOUCHES:
        raise ValueError(f"touch must be first or last, not {touch!r}")
    visits, costs = visits or {}, costs or {}
    tallies: dict[str, Tally] = {}
    for call in _counted(calls):
        value = dimension_value(call, by, touch)
        tally = tallies.get(value)
        if tally is None:
            tally = tallies[value] = Tally()
        tally.add(call)
    return breakdown_rows(tallies, visits=visits, costs=costs)


def breakdown_rows(
    tallies: dict[str, Tally],
    *,
    visits: Mapping[str, int] | None = None,
    costs: Mapping[str, float] | None = None,
) -> list[BreakdownRow]:
    """The rows of a breakdown from each value's tally, most calls first."""
    visits, costs = visits or {}, costs or {}
    for value in (*visits, *costs):
        tallies.setdefault(value, Tally())
    rows = []
    for value, tally in tallies.items():
        seen = visits.get(value, 0) if visits else None
        cost = costs.get(value) if costs else None
        rows.append(BreakdownRow(value=value, **_figures(tally, seen, cost)))
    rows.sort(key=lambda r: (-r.calls, -(r.visits or 0), r.value))
    return rows


def per_day(calls: Iterable[ReportCall], period: Period) -> list[DayRow]:
    """Every day of `period` in its zone, days without a call as zeros."""
    tallies = {day: Tally() for day in period.days()}
    sources: dict[date, dict[str, int]] = {day: {} for day in tallies}
    for call in _counted(calls):
        day = period.day_of(call.started_at)
        tally = tallies.get(day)
        if tally is None:  # outside the period: the caller read a wider range
            continue
        tally.add(call)
        by_source = sources[day]
        source = call.last_touch.source
        by_source[source] = by_source.get(source, 0) + 1
    return [
        DayRow(day, t.calls, t.answered, t.missed, t.abandoned, sources[day])
        for day, t in tallies.items()
    ]


def hour_weekday(calls: Iterable[ReportCall], tz: ZoneInfo) -> list[list[int]]:
    """Calls in a 7 x 24 grid by the site's local weekday (Monday first) and hour."""
    grid = [[0] * 24 for _ in range(7)]
    for call in _counted(calls):
        local = call.started_at.astimezone(tz)
        grid[local.weekday()][local.hour] += 1
    return grid


def per_agent(calls: Iterable[ReportCall]) -> list[AgentRow]:
    """Each agent's calls (answered first); calls no agent took are under agent ''."""
    tallies: dict[str, Tally] = {}
    for call in _counted(calls):
        tallies.setdefault(call.agent, Tally()).add(call)
    return agent_rows(tallies)


def agent_rows(tallies: Mapping[str, Tally]) -> list[AgentRow]:
    """Each agent's row from its tally, answered first."""
    rows = [
        AgentRow(agent, t.calls, t.answered, t.missed, t.abandoned, t.talk_total, t.avg_talk)
        for agent, t in tallies.items()
    ]
    rows.sort(key=lambda r: (-r.answered, -r.calls, r.agent))
    return rows
