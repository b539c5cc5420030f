"""The figures of reports/call_figures.py from calls the store counted in groups (SQL GROUP BY),
not one `ReportCall` at a time: a year of a busy site is a million calls, and making each into
Python objects takes tens of seconds where counting them in SQL takes one.

Days and hours are the site's: the store turns each call's UTC time into local time by the
zone's offset of the moment (`zone_shifts`, exact to the second for any zone and date)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from reports.call_figures import (
    AgentRow,
    BreakdownRow,
    DayRow,
    Summary,
    Tally,
    agent_rows,
    breakdown_rows,
    summary_of,
)
from reports.period import Period

__all__ = [
    "CallCount",
    "breakdown_counted",
    "hour_weekday_counted",
    "per_agent_counted",
    "per_day_counted",
    "summary_counted",
    "zone_shifts",
]


@dataclass(frozen=True, slots=True)
class CallCount:
    """Counted calls (spam and test calls left out) of one state sharing `key`: a dimension's
    value, an agent, a local day and source, or a local weekday and hour."""

    key: tuple[str, ...]
    state: str
    calls: int
    first_time: int
    ring_total: float
    rung: int
    talk_total: float  # of answered calls only
    talked: int


def _tally(counts: Iterable[CallCount]) -> Tally:
    tally = Tally()
    for c in counts:
        _add(tally, c)
    return tally


def _add(tally: Tally, c: CallCount) -> None:
    tally.add_group(
        c.state, c.calls, c.first_time, (c.ring_total, c.rung), (c.talk_total, c.talked)
    )


def _by_key(counts: Iterable[CallCount]) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for c in counts:
        tally = tallies.get(c.key[0])
        if tally is None:
            tally = tallies[c.key[0]] = Tally()
        _add(tally, c)
    return tallies


def summary_counted(counts: Iterable[CallCount], *, visits: int, cost: float | None) -> Summary:
    """`summary` of the counted calls."""
    return summary_of(_tally(counts), visits=visits, cost=cost)


def breakdown_counted(
    counts: Iterable[CallCount],
    *,
    visits: Mapping[str, int] | None = None,
    costs: Mapping[str, float] | None = None,
) -> list[BreakdownRow]:
    """`breakdown` of calls counted by the dimension's value (key[0])."""
    return breakdown_rows(_by_key(counts), visits=visits, costs=costs)


def per_agent_counted(counts: Iterable[CallCount]) -> list[AgentRow]:
    """`per_agent` of calls counted by agent (key[0])."""
    return agent_rows(_by_key(counts))


def zone_shifts(period: Period) -> list[tuple[datetime, int]]:
    """The UTC offsets of the period's zone from its start to its end: (from when, seconds),
    the first from the period's start; a clock change starts the next, to the second."""
    tz, start, end = period.tz, period.start_utc, period.end_utc

    def offset(moment: datetime) -> int:
        shift = moment.astimezone(tz).utcoffset()
        return int(shift.total_seconds()) if shift is not None else 0

    shifts = [(start, offset(start))]
    step = timedelta(hours=1)
    moment = start
    while moment < end:
        following = min(moment + step, end)
        if offset(following) != shifts[-1][1]:
            low, high = moment, following  # the change lies in (low, high]
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset(middle) != shifts[-1][1] else (middle, high)
            shifts.append((high.replace(microsecond=0), offset(high)))
        moment = following
    return shifts


def per_day_counted(counts: Iterable[CallCount], period: Period) -> list[DayRow]:
    """`per_day` of calls counted by local day 'YYYY-MM-DD' (key[0]) and last-touch source
    (key[1])."""
    tallies: dict[date, Tally] = {day: Tally() for day in period.days()}
    sources: dict[date, dict[str, int]] = {day: {} for day in tallies}
    for c in counts:
        day = date.fromisoformat(c.key[0])
        tally = tallies.get(day)
        if tally is None:
            continue
        _add(tally, c)
        by_source = sources[day]
        by_source[c.key[1]] = by_source.get(c.key[1], 0) + c.calls
    return [
        DayRow(day, t.calls, t.answered, t.missed, t.abandoned, sources[day])
        for day, t in tallies.items()
    ]


def hour_weekday_counted(counts: Iterable[CallCount]) -> list[list[int]]:
    """`hour_weekday` of calls counted by local weekday and hour (key[0] 'wHH': w '0' Sunday to
    '6' as SQLite's %w gives it, HH '00'-'23')."""
    grid = [[0] * 24 for _ in range(7)]
    for c in counts:
        weekday_hour = c.key[0]
        grid[(int(weekday_hour[0]) + 6) % 7][int(weekday_hour[1:])] += c.calls
    return grid
