"""A report's period: whole days in the site's time zone, and the same span just before it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["MAX_DAYS", "Period", "PeriodError", "parse_day", "zone"]

# A report reads every call of its period (and of the one before) into memory: a bound keeps
# one request from reading years of calls. A year and a month covers any year-on-year view.
MAX_DAYS = 400
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class PeriodError(ValueError):
    """A period that cannot be reported; the message names the parameter and the reason."""


def parse_day(text: str, name: str) -> date:
    """A 'YYYY-MM-DD' day; PeriodError naming `name` otherwise (no other ISO forms)."""
    if not _DAY.fullmatch(text):
        raise PeriodError(f"'{name}' must be a day written YYYY-MM-DD, e.g. 2026-03-08")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"'{name}': {text} is not a day of the calendar") from None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. Europe/Paris); ValueError when there is none such."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not an IANA time zone like Europe/Paris or UTC") from None


@dataclass(frozen=True)
class Period:
    """Inclusive days `first_day`..`last_day` as the clocks of zone `tz` count them."""

    first_day: date
    last_day: date
    tz: ZoneInfo

    @classmethod
    def parse(cls, since: str, until: str, tz: str) -> Period:
        """The period of days `since`..`until` (inclusive) in zone `tz`; PeriodError if unfit."""
        first, last = parse_day(since, "since"), parse_day(until, "until")
        if last < first:
            raise PeriodError(f"'until' ({until}) is before 'since' ({since})")
        days = (last - first).days + 1
        if days > MAX_DAYS:
            raise PeriodError(f"the period has {days} days; a report covers at most {MAX_DAYS}")
        # The period before must start within the calendar too.
        if first - timedelta(days=days) < date.min + timedelta(days=1):
            raise PeriodError("'since' is too early in the calendar")
        if last >= date.max - timedelta(days=1):
            raise PeriodError("'until' is too late in the calendar")
        try:
            return cls(first, last, zone(tz))
        except ValueError as exc:
            raise PeriodError(f"time zone: {exc}") from None

    @property
    def start_utc(self) -> datetime:
        """The first moment of the period, in UTC."""
        return _midnight(self.first_day, self.tz)

    @property
    def end_utc(self) -> datetime:
        """The first moment after the period, in UTC (exclusive end)."""
        return _midnight(self.last_day + timedelta(days=1), self.tz)

    @property
    def day_count(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def days(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.first_day + timedelta(days=i) for i in range(self.day_count)]

    def previous(self) -> Period:
        """The period of as many days that ends the day before this one starts."""
        last = self.first_day - timedelta(days=1)
        return Period(last - timedelta(days=self.day_count - 1), last, self.tz)

    def day_of(self, moment: datetime) -> date:
        """The day `moment` (aware) falls on in the period's zone."""
        return moment.astimezone(self.tz).date()


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # Where a clock change skips midnight, fold=0 reads it with the offset before the change:
    # the day then starts at the change itself, which is right.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
