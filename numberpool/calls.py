"""A call as the store keeps it, and the rules that name how it ended. Pure: no I/O."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from numberpool.site import Attribution, AttributionKind
from numberpool.visit import VisitContext

__all__ = [
    "ABANDON_SECONDS",
    "ATTRIBUTION_FIELDS",
    "CALL_STATES",
    "CallAttribution",
    "CallRecord",
    "attribution_snapshot",
    "unanswered_state",
]

CALL_STATES = ("ringing", "answered", "missed", "abandoned")

# An unanswered call that ended sooner than this after it began was abandoned by the caller;
# later, it was missed by the business (README.md, "Call records").
ABANDON_SECONDS = 15.0


def unanswered_state(seconds: float, abandon_seconds: float = ABANDON_SECONDS) -> str:
    """`abandoned` or `missed`, for a call that ended unanswered `seconds` after it began."""
    return "abandoned" if seconds < abandon_seconds else "missed"


# The attribution of a call as the API and downloads show it (PRODUCT.md contract). New
# fields go at the end: the download's columns keep their positions for existing imports.
ATTRIBUTION_FIELDS = (
    "kind",
    "session_id",
    "visitor_id",
    "source",
    "medium",
    "campaign",
    "term",
    "content",
    "gclid",
    "landing_page",
    "referrer",
    "confidence",
    "other_session_id",
    "other_visitor_id",
)
# The kinds a pool's lease decides; only these carry a confidence.
_LEASED_KINDS = frozenset({AttributionKind.ACTIVE, AttributionKind.PROBABLE})


@dataclass(frozen=True, slots=True)
class CallAttribution:
    """The visit a call was attributed to, copied from it at call time (a snapshot)."""

    kind: str
    session_id: str | None = None
    visitor_id: str | None = None
    source: str = ""
    medium: str = ""
    campaign: str = ""
    term: str = ""
    content: str = ""
    gclid: str = ""
    landing_page: str = ""
    referrer: str = ""
    # How sure the pool's rules are (0-1; None when no lease decided it), and the rival visit
    # when two could claim the call (None when none; None too in records made before these).
    confidence: float | None = None
    other_session_id: str | None = None
    other_visitor_id: str | None = None

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> CallAttribution:
        """Read a stored snapshot; keys it does not know (older or newer) are left out."""
        fields = {f: snapshot[f] for f in ATTRIBUTION_FIELDS if f in snapshot}
        return cls(**{"kind": "unattributed", **fields})

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in ATTRIBUTION_FIELDS}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One row of `calls`: who called which number, how the call went, and its attribution."""

    call_id: str
    site: str
    dialed: str
    started_at: str  # stored UTC timestamp text, as the API shows it
    state: str
    attribution: CallAttribution
    caller: str = ""
    caller_name: str = ""
    linkedid: str = ""
    answered_at: str | None = None
    ended_at: str | None = None
    agent: str = ""
    route: str = ""
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    hangup_cause: str = ""
    recording: str = ""
    first_time: bool = True
    contact_id: str | None = None
    test_call: bool = False
    # "inbound", or "outbound" for a click-to-call call (stored since migration 0008).
    direction: str = "inbound"


def attribution_snapshot(attribution: Attribution, visit: VisitContext | None) -> CallAttribution:
    """The attribution of a new call record, copied from its visit (if any) at call time."""
    kind, session_id = attribution.kind.value, attribution.session_id or None
    visitor_id = attribution.visitor_id or None
    static = attribution.static
    if static is not None:
        return CallAttribution(
            kind, session_id, visitor_id, static.source, static.medium, static.campaign
        )
    decided = CallAttribution(
        kind,
        session_id,
        visitor_id,
        confidence=attribution.confidence if attribution.kind in _LEASED_KINDS else None,
        other_session_id=attribution.other_session_id or None,
        other_visitor_id=attribution.other_visitor_id or None,
    )
    if visit is None:
        return decided
    # The visit's own rules imply source and medium when the URL had no UTM tags.
    return dataclasses.replace(
        decided,
        source=visit.source,
        medium=visit.medium,
        campaign=visit.utm_campaign,
        term=visit.utm_term,
        content=visit.utm_content,
        gclid=visit.gclid,
        landing_page=visit.landing_page,
        referrer=visit.referrer,
    )
