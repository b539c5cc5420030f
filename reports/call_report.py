"""The call reports as the API, the downloads and `ctgw report calls` give them: each report's
JSON, its tables (for CSV and XLSX) and its file name, from the rows the store read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from reports.call_figures import (
    DIMENSIONS,
    TOUCHES,
    breakdown,
    compare,
    hour_weekday,
    per_agent,
    per_day,
    summary,
)
from reports.call_rows import ReportCall
from reports.costs import CostRow, cost_by, cost_total
from reports.period import Period
from reports.tables import Table, file_name

__all__ = ["REPORTS", "WEEKDAYS", "ReportData", "ReportSpec", "report_json", "report_tables"]

REPORTS = ("summary", "breakdown", "days", "hours", "agents")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_BREAKDOWN_COLUMNS = (
    "calls",
    "answered",
    "missed",
    "abandoned",
    "first_time",
    "avg_ring_seconds",
    "avg_talk_seconds",
    "visits",
    "calls_per_100_visits",
    "cost",
    "cost_per_call",
)


@dataclass(frozen=True)
class ReportSpec:
    """Which report: its kind, and for a breakdown the dimension and the touch."""

    kind: str
    by: str = "campaign"
    touch: str = "last"

    def __post_init__(self) -> None:
        if self.kind not in REPORTS:
            raise ValueError(f"unknown report {self.kind!r} (known: {', '.join(REPORTS)})")
        if self.by not in DIMENSIONS:
            raise ValueError(f"'by' must be one of {', '.join(DIMENSIONS)}; got {self.by!r}")
        if self.touch not in TOUCHES:
            raise ValueError(f"'touch' must be first or last; got {self.touch!r}")

    @property
    def needs_previous(self) -> bool:
        return self.kind == "summary"

    def file_name(self, site: str, period: Period, ext: str) -> str:
        since, until = period.first_day.isoformat(), period.last_day.isoformat()
        if self.kind == "breakdown":
            name = f"calls-by-{self.by.replace('_', '-')}"
            return file_name(name, site, since, until, f"{self.touch}-touch", ext=ext)
        name = {
            "summary": "calls-summary",
            "days": "calls-per-day",
            "hours": "calls-by-hour",
            "agents": "calls-by-agent",
        }[self.kind]
        return file_name(name, site, since, until, ext=ext)


@dataclass(frozen=True)
class ReportData:
    """What the store read for a report: the period's calls (and the period before's for a
    summary), visit counts, and the cost rows that touch either period."""

    site: str
    period: Period
    calls: list[ReportCall]
    visits: int = 0
    visits_by: dict[str, int] = field(default_factory=dict)
    previous_calls: list[ReportCall] = field(default_factory=list)
    previous_visits: int = 0
    costs: list[CostRow] = field(default_factory=list)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _summaries(data: ReportData) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    period, before = data.period, data.period.previous()
    now = summary(
        data.calls,
        visits=data.visits,
        cost=cost_total(data.costs, period.first_day, period.last_day),
    )
    old = summary(
        data.previous_calls,
        visits=data.previous_visits,
        cost=cost_total(data.costs, before.first_day, before.last_day),
    )
    changes = {k: asdict(v) for k, v in compare(now, old).items()}
    return now.as_dict(), old.as_dict(), changes


def _breakdown(data: ReportData, spec: ReportSpec) -> list[dict[str, Any]]:
    period = data.period
    costs = cost_by(data.costs, period.first_day, period.last_day, spec.by)
    rows = breakdown(data.calls, spec.by, touch=spec.touch, visits=data.visits_by, costs=costs)
    return [asdict(row) for row in rows]


def _days(data: ReportData) -> list[dict[str, Any]]:
    return [{**asdict(row), "day": row.day.isoformat()} for row in per_day(data.calls, data.period)]


def report_json(data: ReportData, spec: ReportSpec) -> dict[str, Any]:
    """The report as the API answers it (floats to 4 places)."""
    period = data.period
    head: dict[str, Any] = {
        "report": spec.kind,
        "site": data.site,
        "since": period.first_day.isoformat(),
        "until": period.last_day.isoformat(),
        "timezone": period.tz.key,
    }
    if spec.kind == "summary":
        now, old, changes = _summaries(data)
        before = period.previous()
        head["previous_period"] = {
            "since": before.first_day.isoformat(),
            "until": before.last_day.isoformat(),
        }
        body: dict[str, Any] = {"summary": now, "previous": old, "changes": changes}
    elif spec.kind == "breakdown":
        body = {"by": spec.by, "touch": spec.touch, "rows": _breakdown(data, spec)}
    elif spec.kind == "days":
        body = {"days": _days(data)}
    elif spec.kind == "hours":
        body = {"weekdays": list(WEEKDAYS), "grid": hour_weekday(data.calls, period.tz)}
    else:
        body = {"agents": [asdict(row) for row in per_agent(data.calls)]}
    return _rounded({**head, **body})  # type: ignore[no-any-return]


def report_tables(data: ReportData, spec: ReportSpec) -> list[Table]:
    """The report as tables, for the CSV and XLSX downloads."""
    if spec.kind == "summary":
        _, _, changes = _summaries(data)
        rows: list[tuple[Any, ...]] = [
            (name, c["value"], c["previous"], c["delta"], c["percent"])
            for name, c in changes.items()
        ]
        return [Table("Summary", ("figure", "value", "previous", "delta", "percent"), rows)]
    if spec.kind == "breakdown":
        found = _breakdown(data, spec)
        rows = [(r["value"], *(r[c] for c in _BREAKDOWN_COLUMNS)) for r in found]
        title = f"By {spec.by} ({spec.touch} touch)"
        return [Table(title, (spec.by, *_BREAKDOWN_COLUMNS), rows)]
    if spec.kind == "days":
        return [_days_table(data)]
    if spec.kind == "hours":
        grid = hour_weekday(data.calls, data.period.tz)
        rows = [(day, *grid[i]) for i, day in enumerate(WEEKDAYS)]
        return [Table("Hour x weekday", ("weekday", *(f"{h:02d}:00" for h in range(24))), rows)]
    rows = [
        (a.agent, a.calls, a.answered, a.missed, a.abandoned, a.talk_seconds, a.avg_talk_seconds)
        for a in per_agent(data.calls)
    ]
    return [Table("Per agent", ("agent", *_AGENT_COLUMNS), rows)]


_AGENT_COLUMNS = ("calls", "answered", "missed", "abandoned", "talk_seconds", "avg_talk_seconds")


def _days_table(data: ReportData) -> Table:
    """Calls per day, with a column per last-touch source (the busiest source first)."""
    days = per_day(data.calls, data.period)
    totals: dict[str, int] = {}
    for day in days:
        for source, n in day.by_source.items():
            totals[source] = totals.get(source, 0) + n
    sources = sorted(totals, key=lambda s: (-totals[s], s))
    rows: list[tuple[Any, ...]] = [
        (
            d.day,
            d.calls,
            d.answered,
            d.missed,
            d.abandoned,
            *(d.by_source.get(s, 0) for s in sources),
        )
        for d in days
    ]
    columns = ("day", "calls", "answered", "missed", "abandoned")
    return Table("Per day", (*columns, *(f"source: {s}" for s in sources)), rows)
