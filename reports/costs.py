"""Campaign costs in a period: each cost spread evenly over its days, the period's share."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from reports.period import PeriodError, parse_day

__all__ = ["COST_KEYS", "CostRow", "cost_by", "cost_total", "parse_cost"]

# The dimensions a cost is entered by: a campaign (of a source).
COST_KEYS = ("campaign", "source")
_MAX_TEXT = 200


@dataclass(frozen=True)
class CostRow:
    """What was paid for a campaign over inclusive days in the site's zone."""

    source: str
    campaign: str
    first_day: date
    last_day: date
    amount: float
    currency: str = "USD"

    def share(self, first: date, last: date) -> float:
        """The part of the amount that falls on days first..last."""
        start, end = max(first, self.first_day), min(last, self.last_day)
        if end < start:
            return 0.0
        days = (self.last_day - self.first_day).days + 1
        return self.amount * ((end - start).days + 1) / days

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "campaign": self.campaign,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "amount": self.amount,
            "currency": self.currency,
        }


def cost_total(rows: Iterable[CostRow], first: date, last: date) -> float | None:
    """All costs' share of first..last; None when no cost touches those days."""
    touching = [r for r in rows if r.first_day <= last and r.last_day >= first]
    return sum(r.share(first, last) for r in touching) if touching else None


def cost_by(rows: Iterable[CostRow], first: date, last: date, by: str) -> dict[str, float]:
    """The costs' share of first..last by campaign or by source; {} for other dimensions."""
    if by not in COST_KEYS:
        return {}
    out: dict[str, float] = {}
    for row in rows:
        if row.first_day <= last and row.last_day >= first:
            key = row.campaign if by == "campaign" else row.source
            out[key] = out.get(key, 0.0) + row.share(first, last)
    return out


def _text(item: Mapping[str, Any], name: str, required: bool) -> str:
    value = item.get(name, "")
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise ValueError(f"'{name}' must be text of at most {_MAX_TEXT} characters")
    if required and not value.strip():
        raise ValueError(f"'{name}' is required")
    return value.strip()


def parse_cost(item: Any) -> CostRow:
    """A cost row from JSON; ValueError naming the field that is wrong."""
    if not isinstance(item, Mapping):
        raise ValueError("each cost must be an object")
    unknown = set(item) - {"source", "campaign", "first_day", "last_day", "amount", "currency"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    try:
        first = parse_day(_text(item, "first_day", True), "first_day")
        last = parse_day(_text(item, "last_day", True), "last_day")
    except PeriodError as exc:
        raise ValueError(str(exc)) from None
    if last < first:
        raise ValueError("'last_day' is before 'first_day'")
    amount = item.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise ValueError("'amount' must be a number")
    if not math.isfinite(amount) or amount < 0 or amount > 1e12:
        raise ValueError("'amount' must be from 0 to 1e12")
    currency = item.get("currency", "USD")
    if not isinstance(currency, str) or not (len(currency) == 3 and currency.isalpha()):
        raise ValueError("'currency' must be a three-letter code like USD")
    return CostRow(
        _text(item, "source", False),
        _text(item, "campaign", True),
        first,
        last,
        float(amount),
        currency.upper(),
    )
