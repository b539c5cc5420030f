"""Scoring for bench/attribution.py: what each page showed, and right / wrong / unattributed
calls for ctgw (from its store) and for the naive tracker (on the same page views and calls)."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from bench.attribution_daemon import TARGET, StoredCall, pool_numbers
from bench.attribution_traffic import NaiveTracker, Traffic

__all__ = ["Shown", "Tally", "score_ctgw", "score_naive"]


@dataclass
class Shown:
    """The numbers one visit's page showed, in order, with the session behind each."""

    times: list[float] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    def add(self, at: float, number: str, session_id: str = "") -> None:
        self.times.append(at)
        self.numbers.append(number)
        self.sessions.append(session_id)

    def number_at(self, at: float) -> str:
        """The number on the page at `at` (the site's own number before any was shown)."""
        i = bisect.bisect_right(self.times, at)
        return self.numbers[i - 1] if i else TARGET


@dataclass
class Tally:
    right: int = 0
    wrong: int = 0
    unattributed: int = 0
    lost: int = 0  # no call record (the lookup failed)
    same_visit: int = 0
    probable: int = 0
    probable_right: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    right_by_kind: Counter[str] = field(default_factory=Counter)
    wrong_by_kind: Counter[str] = field(default_factory=Counter)

    @property
    def calls(self) -> int:
        return self.right + self.wrong + self.unattributed + self.lost

    def pct(self, n: int) -> float:
        return round(100.0 * n / self.calls, 2) if self.calls else 0.0

    def by_kind_pct(self, counts: Counter[str]) -> dict[str, float]:
        """Per call kind, the share of that kind's calls (the calls of each kind in `calls`)."""
        return {k: round(100.0 * counts[k] / n, 1) for k, n in sorted(self.by_kind.items())}

    def summary(self, naive: bool = False) -> dict[str, object]:
        if naive:
            return {
                "right": self.pct(self.right),
                "wrong": self.pct(self.wrong),
                "unattributed": self.pct(self.unattributed),
            }
        return {
            "right": self.pct(self.right),
            "wrong": self.pct(self.wrong),
            "unattributed": self.pct(self.unattributed + self.lost),
            "calls_by_kind": dict(sorted(self.by_kind.items())),
            "lost": self.lost,
            "same_visit": self.pct(self.same_visit),
            "probable": self.probable,
            "probable_right": round(100.0 * self.probable_right / self.probable, 1)
            if self.probable
            else None,
            "right_by_kind": self.by_kind_pct(self.right_by_kind),
            "wrong_by_kind": self.by_kind_pct(self.wrong_by_kind),
        }


def score_ctgw(
    traffic: Traffic,
    shown: dict[int, Shown],
    linkedids: dict[int, str],
    stored: dict[str, StoredCall],
) -> Tally:
    """ctgw's calls as its store recorded them (`linkedids`: call index -> linkedid sent)."""
    tally = Tally()
    for call in traffic.calls:
        truth = traffic.visits[call.visit]
        tally.by_kind[call.kind] += 1
        record = stored.get(linkedids.get(call.index, ""))
        if record is None:
            tally.lost += 1
            continue
        if record.kind not in ("active", "probable"):
            tally.unattributed += 1
            continue
        right = record.visitor_id == truth.visitor_id
        tally.right += right
        tally.wrong += not right
        tally.right_by_kind[call.kind] += right
        tally.wrong_by_kind[call.kind] += not right
        tally.same_visit += record.session_id in shown[call.visit].sessions
        if record.kind == "probable":
            tally.probable += 1
            tally.probable_right += right
    return tally


def score_naive(traffic: Traffic, size: int) -> Tally:
    """The naive tracker on the same page views (landings and second tabs) and calls."""
    naive = NaiveTracker(pool_numbers(size))
    views = [(v.start, v.index) for v in traffic.visits if not v.bot]
    views += [(v.tab_at, v.index) for v in traffic.visits if v.tab_at is not None]
    shown = {index: Shown() for _, index in views}
    for at, index in sorted(views):
        shown[index].add(at, naive.show(traffic.visits[index].visitor_id, at))
    tally = Tally()
    for call in traffic.calls:
        truth = traffic.visits[call.visit]
        tally.by_kind[call.kind] += 1
        who = naive.attribute(shown[call.visit].number_at(call.at), call.at)
        if not who:
            tally.unattributed += 1
            continue
        right = who == truth.visitor_id
        tally.right += right
        tally.wrong += not right
        tally.right_by_kind[call.kind] += right
    return tally
