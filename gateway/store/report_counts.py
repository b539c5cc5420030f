"""A report's calls counted in SQL, one row per group (reports/call_counts.py): by a last-touch
dimension's value, by agent, by UTC quarter hour and source, or all of the period together.

The expressions are the ones reports/call_rows.py applies in Python to each call: a value of
the call's attribution snapshot, its session's click ids for the click network. The tests hold
both ways to the same figures (tests/unit/test_report_counts.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gateway.store.times import ts
from reports.call_counts import CallCount, zone_shifts
from reports.call_rows import CLICK_NETWORKS
from reports.period import Period

__all__ = [
    "COUNTED_DIMENSIONS",
    "PG_COUNTED_DIMENSIONS",
    "PG_SOURCE_SQL",
    "SOURCE_SQL",
    "Reads",
    "count_calls",
    "dialect_of",
    "local_day_sql",
    "local_hour_sql",
    "pg_local_day_sql",
    "pg_local_hour_sql",
]


class Reads(Protocol):
    """A reading thread's connection: `sqlite3.Connection`, or the PostgreSQL store's
    (gateway/store/pg/thread_reads.py, with `dialect = "postgresql"`)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


def dialect_of(conn: Reads) -> str:
    """Which SQL `conn` speaks: a plain `sqlite3.Connection` has no `dialect`."""
    return str(getattr(conn, "dialect", "sqlite"))


_ATTRIBUTION = "CASE WHEN c.attribution = '' THEN '{}' ELSE c.attribution END"


def _snapshot(name: str) -> str:
    return f"coalesce(json_extract({_ATTRIBUTION}, '$.{name}'), '')"


# PostgreSQL: `->>` gives a JSON string's text, a number's digits and NULL for a JSON null, as
# json_extract does for what the snapshot holds (strings). `json`, not `jsonb`: one key read
# once a row, and parsing to jsonb cost a third more (the overview's day counts: 171 ms
# against 125 ms on 30,000 calls).
def _pg_snapshot(name: str) -> str:
    return f"coalesce(CAST({_ATTRIBUTION} AS json) ->> '{name}', '')"


def _click_network(snapshot: Callable[[str], str] = _snapshot) -> str:
    cases = " ".join(f"WHEN s.{column} != '' THEN '{net}'" for column, net in CLICK_NETWORKS)
    return f"CASE {cases} WHEN {snapshot('gclid')} != '' THEN 'google' ELSE '' END"


SOURCE_SQL = _snapshot("source")
# Each last-touch dimension as SQL over calls c (and its session s when the value needs it).
COUNTED_DIMENSIONS: dict[str, tuple[str, bool]] = {
    **{
        name: (_snapshot(name), False)
        for name in ("source", "medium", "campaign", "term", "content", "landing_page")
    },
    "referrer": (_snapshot("referrer"), False),
    "click_network": (_click_network(), True),
    "kind": ("c.attribution_kind", False),
    "tracking_number": ("c.dialed", False),
    "static_source": (
        f"CASE WHEN c.attribution_kind = 'static' THEN {SOURCE_SQL} ELSE '' END",
        False,
    ),
}
PG_SOURCE_SQL = _pg_snapshot("source")
PG_COUNTED_DIMENSIONS: dict[str, tuple[str, bool]] = {
    **{
        name: (_pg_snapshot(name), False)
        for name in ("source", "medium", "campaign", "term", "content", "landing_page")
    },
    "referrer": (_pg_snapshot("referrer"), False),
    "click_network": (_click_network(_pg_snapshot), True),
    "kind": ("c.attribution_kind", False),
    "tracking_number": ("c.dialed", False),
    "static_source": (
        f"CASE WHEN c.attribution_kind = 'static' THEN {PG_SOURCE_SQL} ELSE '' END",
        False,
    ),
}
_SESSION = "LEFT JOIN sessions s ON c.session_id != '' AND s.session_id = c.session_id"
_TALK = "CASE WHEN c.state = 'answered' THEN c.talk_seconds END"


def _shift(period: Period) -> str:
    """SQL of the SQLite date modifier that turns a call's UTC time into the period's local
    time: the zone's offset at that moment, each clock change of the period a case."""
    shifts = zone_shifts(period)
    cases = " ".join(
        f"WHEN c.started_at < '{ts(at)}' THEN '{offset:+d} seconds'"
        for (at, _), (_, offset) in zip(shifts[1:], shifts, strict=False)
    )
    last = f"'{shifts[-1][1]:+d} seconds'"
    return f"CASE {cases} ELSE {last} END" if cases else last


# Whole seconds of the UTC time: SQLite keeps milliseconds and would round .9999995 up.
_UTC = "substr(c.started_at, 1, 19)"


def local_day_sql(period: Period) -> str:
    """SQL of the local day 'YYYY-MM-DD' a call began on."""
    return f"date({_UTC}, {_shift(period)})"


def local_hour_sql(period: Period) -> str:
    """SQL of the local weekday and hour a call began at, 'wHH' (w '0' Sunday to '6')."""
    return f"strftime('%w%H', {_UTC}, {_shift(period)})"


# PostgreSQL: the same whole seconds and the same offsets (reports.call_counts.zone_shifts,
# from Python's zone data) added as an interval, so both backends bucket a call alike whatever
# zone data the server has.
def _pg_local(period: Period) -> str:
    return f"(CAST({_UTC} AS timestamp) + CAST({_shift(period)} AS interval))"


def pg_local_day_sql(period: Period) -> str:
    """`local_day_sql` on PostgreSQL."""
    return f"to_char({_pg_local(period)}, 'YYYY-MM-DD')"


def pg_local_hour_sql(period: Period) -> str:
    """`local_hour_sql` on PostgreSQL ('wHH', w '0' Sunday: EXTRACT's DOW counts the same)."""
    local = _pg_local(period)
    return f"CAST(CAST(EXTRACT(DOW FROM {local}) AS INTEGER) AS TEXT) || to_char({local}, 'HH24')"


def _pg_sql(keys: tuple[str, ...], join: bool) -> str:
    """`_sql` on PostgreSQL: a sum of a comparison is a sum of 0/1, sums of integers as such."""
    names = "".join(f"{key} AS k{i}, " for i, key in enumerate(keys))
    groups = "".join(f"{i + 1}, " for i in range(len(keys)))
    return (
        f"SELECT {names}c.state, count(*),"  # noqa: S608 - fixed SQL
        " CAST(coalesce(sum(CASE WHEN c.first_time != 0 THEN 1 ELSE 0 END), 0) AS BIGINT),"
        f" coalesce(sum(c.ring_seconds), 0), count(c.ring_seconds),"
        f" coalesce(sum({_TALK}), 0), count({_TALK})"
        f" FROM calls c {_SESSION if join else ''}"
        " WHERE c.site = ? AND c.started_at >= ? AND c.started_at < ?"
        " AND c.spam = 0 AND c.test_call = 0 AND c.direction = 'inbound'"
        f" GROUP BY {groups}c.state"
    )


def _sql(keys: tuple[str, ...], join: bool) -> str:
    names = "".join(f"{key} AS k{i}, " for i, key in enumerate(keys))
    groups = "".join(f"{i + 1}, " for i in range(len(keys)))
    return (
        f"SELECT {names}c.state, count(*), sum(c.first_time != 0),"  # noqa: S608 - fixed SQL
        f" coalesce(sum(c.ring_seconds), 0), count(c.ring_seconds),"
        f" coalesce(sum({_TALK}), 0), count({_TALK})"
        f" FROM calls c {_SESSION if join else ''}"
        " WHERE c.site = ? AND c.started_at >= ? AND c.started_at < ?"
        " AND c.spam = 0 AND c.test_call = 0 AND c.direction = 'inbound'"
        f" GROUP BY {groups}c.state"
    )


def count_calls(
    conn: Reads, site: str, period: Period, keys: tuple[str, ...], join: bool = False
) -> list[CallCount]:
    """The site's counted calls of `period` grouped by the SQL expressions `keys` and state;
    `join` when a key reads the call's session (s). The keys in `conn`'s dialect."""
    params = (site, ts(period.start_utc), ts(period.end_utc))
    n = len(keys)
    sql = _pg_sql(keys, join) if dialect_of(conn) == "postgresql" else _sql(keys, join)
    rows = (tuple(row) for row in conn.execute(sql, params))
    return [
        CallCount(
            key=tuple("" if v is None else str(v) for v in row[:n]),
            state=row[n],
            calls=row[n + 1],
            first_time=row[n + 2],
            ring_total=float(row[n + 3]),
            rung=row[n + 4],
            talk_total=float(row[n + 5]),
            talked=row[n + 6],
        )
        for row in rows
    ]
