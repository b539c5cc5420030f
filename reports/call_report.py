"""The call reports as the API, the downloads and `ctgw report calls` give them: each report's
JSON, its tables (for CSV and XLSX) and its file name, from the rows the store read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from reports.call_counts import (
    CallCount,
    breakdown_counted,
    hour_weekday_counted,
    per_agent_counted,
    per_day_counted,
    summary_counted,
)
from reports.call_figures import (
    DIMENSIONS,
    TOUCHES,
    AgentRow,
    DayRow,
    Summary,
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

__all__ = [
    "REPORTS",
    "WEEKDAYS",
    "ReportData",
    "ReportSpec",
    "overview_json",
    "report_json",
    "report_tables",
]

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
    summary), visit counts, and the cost rows that touch either period. The calls come one
    by one (`calls`) or, when `counts` is not None, counted in groups as the report needs them
    (reports/call_counts.py: by value, by agent, by local day and source, by weekday and hour,
    or all together); `hour_counts` holds the weekday and hour counts of an overview."""

    site: str
    period: Period
    calls: list[ReportCall]
    visits: int = 0
    visits_by: dict[str, int] = field(default_factory=dict)
    previous_calls: list[ReportCall] = field(default_factory=list)
    previous_visits: int = 0
    costs: list[CostRow] = field(default_factory=list)
    counts: list[CallCount] | None = None
    previous_counts: list[CallCount] | None = None
    hour_counts: list[CallCount] | None = None

    def summary(self, *, previous: bool = False) -> Summary:
        """The period's summary, or the previous period's."""
        period = self.period.previous() if previous else self.period
        cost = cost_total(self.costs, period.first_day, period.last_day)
        visits = self.previous_visits if previous else self.visits
        counts = self.previous_counts if previous else self.counts
        if counts is not None:
            return summary_counted(counts, visits=visits, cost=cost)
        return summary(self.previous_calls if previous else self.calls, visits=visits, cost=cost)

    def per_day(self) -> list[DayRow]:
        """Calls per day of the period, by last-touch source."""
        if self.counts is not None:
            return per_day_counted(self.counts, self.period)
        return per_day(self.calls, self.period)

    def hour_weekday(self) -> list[list[int]]:
        """The hour x weekday grid of the period."""
        counts = self.hour_counts if self.hour_counts is not None else self.counts
        if counts is not None:
            return hour_weekday_counted(counts)
        return hour_weekday(self.calls, self.period.tz)

    def per_agent(self) -> list[AgentRow]:
        """Each agent's calls."""
        if self.counts is not None:
            return per_agent_counted(self.counts)
        return per_agent(self.calls)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _summaries(data: ReportData) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    now, old = data.summary(), data.summary(previous=True)
    changes = {k: asdict(v) for k, v in compare(now, old).items()}
    return now.as_dict(), old.as_dict(), changes


def _breakdown(data: ReportData, spec: ReportSpec) -> list[dict[str, Any]]:
    period = data.period
    costs = cost_by(data.costs, period.first_day, period.last_day, spec.by)
    if data.counts is not None:
        rows = breakdown_counted(data.counts, visits=data.visits_by, costs=costs)
    else:
        rows = breakdown(data.calls, spec.by, touch=spec.touch, visits=data.visits_by, costs=costs)
    return [asdict(row) for row in rows]


def _days(data: ReportData) -> list[dict[str, Any]]:
    return [{**asdict(row), "day": row.day.isoformat()} for row in data.per_day()]


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
        body = {"weekdays": list(WEEKDAYS), "grid": data.hour_weekday()}
    else:
        body = {"agents": [asdict(row) for row in data.per_agent()]}
    return _rounded({**head, **body})  # type: ignore[no-any-return]


def overview_json(data: ReportData) -> dict[str, Any]:
    """The dashboard's overview in one: the summary against the previous period, the days
    and the hour x weekday grid, each as report_json gives it (data as `read_overview` reads)."""
    parts = [report_json(data, ReportSpec(kind)) for kind in ("summary", "days", "hours")]
    merged = {k: v for part in parts for k, v in part.items()}
    return {**merged, "report": "overview"}


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
        grid = data.hour_weekday()
        rows = [(day, *grid[i]) for i, day in enumerate(WEEKDAYS)]
        return [Table("Hour x weekday", ("weekday", *(f"{h:02d}:00" for h in range(24))), rows)]
    rows = [
        (a.agent, a.calls, a.answered, a.missed, a.abandoned, a.talk_seconds, a.avg_talk_seconds)
        for a in data.per_agent()
    ]
    return [Table("Per agent", ("agent", *_AGENT_COLUMNS), rows)]


_AGENT_COLUMNS = ("calls", "answered", "missed", "abandoned", "talk_seconds", "avg_talk_seconds")


def _days_table(data: ReportData) -> Table:
    """Calls per day, with a column per last-touch source (the busiest source first)."""
    days = data.per_day()
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
