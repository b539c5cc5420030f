"""Pool health: peak numbers in use against pool size, exhaustion events, a growth advice.

A number shared by two visitors (numberpool/slot.py: its first holder called) is one number in
use: the peak counts numbers, so utilisation never passes 100 %."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

__all__ = ["GROWTH_THRESHOLD", "PoolHealth", "numbers_in_use", "peak_concurrent", "pool_health"]

# Above this share of numbers live at the peak, calls start landing on reused numbers.
GROWTH_THRESHOLD = 0.75


class Rows(Protocol):
    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]: ...


@dataclass(frozen=True)
class PoolHealth:
    pool_id: str
    site: str
    size: int
    peak_live: int
    exhausted: int
    utilisation: float
    recommended_size: int

    @property
    def needs_growth(self) -> bool:
        return self.utilisation > GROWTH_THRESHOLD or self.exhausted > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "needs_growth": self.needs_growth}

    def line(self) -> str:
        advice = f"grow to {self.recommended_size}" if self.needs_growth else "ok"
        return (
            f"{self.pool_id}\tsize {self.size}\tpeak {self.peak_live}"
            f"\t{self.utilisation:.0%}\texhausted {self.exhausted}\t{advice}"
        )


def peak_concurrent(intervals: list[tuple[str, str]]) -> int:
    """The largest number of [start, end) intervals open at one instant (timestamps as text)."""
    edges = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda edge: (edge[0], edge[1]),
    )
    live = peak = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    return peak


def numbers_in_use(leases: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """The spans each number was in use, from its (number, start, end) leases: the leases of
    one number that overlap (a share) or touch (a returning visitor) merged into one span."""
    spans: list[tuple[str, str]] = []
    by_number: dict[str, list[tuple[str, str]]] = {}
    for number, start, end in leases:
        by_number.setdefault(number, []).append((start, end))
    for intervals in by_number.values():
        intervals.sort()
        start, end = intervals[0]
        for next_start, next_end in intervals[1:]:
            if next_start <= end:
                end = max(end, next_end)
            else:
                spans.append((start, end))
                start, end = next_start, next_end
        spans.append((start, end))
    return spans


async def pool_health(db: Rows, now: datetime, days: int = 7) -> list[PoolHealth]:
    """Health of every pool over the last `days` days."""
    since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    pools = await db.fetchall(
        "SELECT p.pool_id, p.site, count(n.number) AS size FROM pools p"
        " LEFT JOIN numbers n USING (pool_id) GROUP BY p.pool_id ORDER BY p.site, p.pool_id"
    )
    out = []
    for pool in pools:
        leases = await db.fetchall(
            "SELECT number, started_at, until FROM leases WHERE pool_id = ? AND until > ?",
            (pool["pool_id"], since),
        )
        events = await db.fetchall(
            "SELECT count(*) AS n FROM pool_events WHERE pool_id = ? AND kind = 'exhausted'"
            " AND at > ?",
            (pool["pool_id"], since),
        )
        size = int(pool["size"])
        spans = numbers_in_use([(r["number"], r["started_at"], r["until"]) for r in leases])
        peak = peak_concurrent(spans)
        exhausted = int(events[0]["n"])
        utilisation = peak / size if size else 1.0
        wanted = math.ceil(peak / GROWTH_THRESHOLD) if peak else size
        if exhausted:
            wanted = max(wanted, size + max(1, math.ceil(size * 0.25)))
        out.append(
            PoolHealth(
                pool["pool_id"],
                pool["site"],
                size,
                peak,
                exhausted,
                round(utilisation, 3),
                max(size, wanted),
            )
        )
    return out
