"""Timestamps as the store keeps them: UTC text of fixed width, so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_ts", "ts"]


def ts(moment: datetime) -> str:
    """A UTC timestamp as stored: fixed width, so text order is time order."""
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # isoformat is C code and much faster than strftime; drop its "+00:00" for a "Z".
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def from_ts(text: str) -> datetime:
    """Read a stored timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
