"""One stored call as reports see it: its outcome, its last touch (the visit it was attributed
to) and its first touch (the attribution of the caller's first call), with the click network."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from numberpool.visit import VisitContext

__all__ = [
    "CLICK_NETWORKS",
    "SESSION_DIMENSIONS",
    "ReportCall",
    "Touch",
    "click_network",
    "first_touch",
    "report_call",
    "session_value",
    "touch_from",
]

# Which ad network a click id comes from, in the order a visit with several is read.
CLICK_NETWORKS = (
    ("gclid", "google"),
    ("gbraid", "google"),
    ("wbraid", "google"),
    ("msclkid", "microsoft"),
    ("fbclid", "meta"),
    ("bd_vid", "baidu"),
)
# The dimensions a visit has before any call: calls per 100 visits is known for these only.
SESSION_DIMENSIONS = (
    "source",
    "medium",
    "campaign",
    "term",
    "content",
    "landing_page",
    "referrer",
    "click_network",
)

_VISIT_TEXT = tuple(k for k in VisitContext._fields if k != "params")


@dataclass(frozen=True, slots=True)
class Touch:
    """A marketing touch: what brought the caller (one call's attribution)."""

    kind: str
    source: str = ""
    medium: str = ""
    campaign: str = ""
    term: str = ""
    content: str = ""
    landing_page: str = ""
    referrer: str = ""
    click_network: str = ""  # google, microsoft, meta, baidu or ''
    static_source: str = ""  # the static number's label; '' unless kind is static


@dataclass(frozen=True, slots=True)
class ReportCall:
    """One stored call, as its reports count it."""

    call_id: str
    site: str
    started_at: datetime  # aware, UTC
    state: str
    agent: str
    ring_seconds: float | None
    talk_seconds: float | None
    first_time: bool
    dialed: str  # the tracking number
    caller: str
    spam: bool
    test_call: bool
    last_touch: Touch
    first_touch: Touch
    pages: tuple[str, ...] = ()
    caller_name: str = ""
    session_id: str = ""
    click_id: str = ""

    @property
    def counted(self) -> bool:
        """False for spam and test calls: every figure leaves them out."""
        return not (self.spam or self.test_call)

    def touch(self, which: str) -> Touch:
        """The first or the last touch."""
        return self.first_touch if which == "first" else self.last_touch


def click_network(ids: Mapping[str, Any]) -> str:
    """The ad network of the first click id present in `ids` ('' when none is)."""
    for name, network in CLICK_NETWORKS:
        if ids.get(name):
            return network
    return ""


def touch_from(kind: str, attribution: Mapping[str, Any], clicks: Mapping[str, Any]) -> Touch:
    """The touch of a call from its stored attribution snapshot and its session's click ids.

    A call whose session row is gone keeps the gclid its snapshot copied at call time."""
    network = click_network(clicks) or click_network({"gclid": attribution.get("gclid")})
    source = str(attribution.get("source") or "")
    return Touch(
        kind=kind,
        source=source,
        medium=str(attribution.get("medium") or ""),
        campaign=str(attribution.get("campaign") or ""),
        term=str(attribution.get("term") or ""),
        content=str(attribution.get("content") or ""),
        landing_page=str(attribution.get("landing_page") or ""),
        referrer=str(attribution.get("referrer") or ""),
        click_network=network,
        static_source=source if kind == "static" else "",
    )


def _clicks(row: Any, prefix: str) -> dict[str, str]:
    return {name: row[prefix + name] or "" for name, _ in CLICK_NETWORKS}


def report_call(row: Any, first: Touch | None) -> ReportCall:
    """A call from a stored row (calls columns, its session's as `s_*`); `first` is the touch
    of the caller's first call, None when this call is the first one known."""
    snapshot = json.loads(row["attribution"] or "{}")
    clicks = _clicks(row, "s_")
    last = touch_from(row["attribution_kind"], snapshot, clicks)
    pages = tuple(dict.fromkeys(p for p in (row["s_landing_page"], row["s_url"]) if p))
    landing = last.landing_page
    return ReportCall(
        call_id=row["call_id"],
        site=row["site"],
        started_at=datetime.fromisoformat(row["started_at"]),
        state=row["state"],
        agent=row["agent"],
        ring_seconds=row["ring_seconds"],
        talk_seconds=row["talk_seconds"],
        first_time=bool(row["first_time"]),
        dialed=row["dialed"],
        caller=row["caller"],
        spam=bool(row["spam"]),
        test_call=bool(row["test_call"]),
        last_touch=last,
        first_touch=first or last,
        pages=pages or ((landing,) if landing else ()),
        caller_name=row["caller_name"],
        session_id=row["session_id"],
        click_id=next((v for v in clicks.values() if v), str(snapshot.get("gclid") or "")),
    )


def first_touch(row: Any) -> Touch:
    """The touch of a caller's first call, from its row (as `report_call` reads one)."""
    return touch_from(
        row["attribution_kind"], json.loads(row["attribution"] or "{}"), _clicks(row, "s_")
    )


def session_value(by: str, session: Mapping[str, Any]) -> str:
    """The value of dimension `by` (one of SESSION_DIMENSIONS) for a stored visit."""
    if by == "click_network":
        return click_network(session)
    if by in ("source", "medium"):
        text = {k: str(session.get(k) or "") for k in _VISIT_TEXT}
        visit = VisitContext(**text)  # type: ignore[arg-type]  # every field but params is text
        return visit.source if by == "source" else visit.medium
    column = {"campaign": "utm_campaign", "term": "utm_term", "content": "utm_content"}.get(by, by)
    return str(session.get(column) or "")
