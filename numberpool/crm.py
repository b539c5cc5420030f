"""The CRM's rules: how a finished call, a disposition or a person's edit moves a contact's lead
status and follow-up tasks, each change with its history entry. Pure: no I/O, times are given."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import phonenumbers

__all__ = [
    "DEFAULT_DISPOSITIONS",
    "STATUSES",
    "SYSTEM",
    "CallOutcome",
    "CrmInputError",
    "CrmRules",
    "Disposition",
    "FinishedCall",
    "FollowUp",
    "HistoryEntry",
    "LeadEdit",
    "NumberFacts",
    "after_call",
    "after_disposition",
    "disposition_from",
    "edit_entries",
    "lead_edit_from",
    "number_facts",
    "rules_problem",
]

# new: never reached; contacted: a real conversation took place; qualified: a person judged it a
# real prospect; customer: it bought (booked); lost: no business will come of it.
STATUSES = ("new", "contacted", "qualified", "customer", "lost")
# Who made a change the rules made by themselves (a person's change names their user id).
SYSTEM = "system"


@dataclass(frozen=True)
class Disposition:
    """An outcome an agent sets after a call; it may move the status, close tasks, mark spam."""

    name: str
    status: str = ""  # '' keeps the status
    closes_tasks: bool = False
    spam: bool = False


DEFAULT_DISPOSITIONS = (
    Disposition("booked", "customer", closes_tasks=True),
    Disposition("quote sent", "qualified", closes_tasks=True),
    Disposition("call back"),
    Disposition("wrong number", "lost", closes_tasks=True),
    Disposition("spam", "lost", closes_tasks=True, spam=True),
)


@dataclass(frozen=True)
class CrmRules:
    contacted_talk_seconds: float = 30.0
    followup_delay: timedelta = timedelta(minutes=60)
    dispositions: tuple[Disposition, ...] = DEFAULT_DISPOSITIONS

    def disposition(self, name: str) -> Disposition | None:
        return next((d for d in self.dispositions if d.name == name), None)


def rules_problem(dispositions: tuple[Disposition, ...]) -> tuple[str, str] | None:
    """What is wrong with a configured list of dispositions: (key, reason), None if nothing."""
    seen: set[str] = set()
    for i, d in enumerate(dispositions):
        if not d.name.strip() or len(d.name) > 40 or not d.name.isprintable():
            return f"dispositions[{i}].name", "must be 1-40 printable characters"
        if d.name in seen:
            return f"dispositions[{i}].name", f"{d.name!r} is listed twice"
        if d.status and d.status not in STATUSES:
            return f"dispositions[{i}].status", f"must be one of {', '.join(STATUSES)} or empty"
        seen.add(d.name)
    return None


class HistoryEntry(NamedTuple):
    """One change of a contact (on one site): who made it, what changed, from what to what."""

    who: str
    what: str
    before: str
    after: str
    at: datetime


@dataclass(frozen=True)
class FinishedCall:
    """What the rules need of a call that ended: its outcome and its contact on its site."""

    call_id: str
    site: str
    contact_id: str
    state: str
    talk_seconds: float | None
    ended_at: datetime


@dataclass(frozen=True)
class FollowUp:
    """A task to call a contact back, for any agent of the site."""

    task_id: str
    call_id: str
    due_at: datetime


@dataclass(frozen=True)
class CallOutcome:
    """What a call or a disposition changes. The status moves only if it still is `status_from`
    when the change is written ('' = whatever it is); the store applies it so."""

    status_from: str = ""
    status_to: str = ""
    close_tasks: bool = False
    follow_up: FollowUp | None = None
    spam: bool = False
    history: tuple[HistoryEntry, ...] = field(default=())

    @property
    def moves_status(self) -> bool:
        return bool(self.status_to)


def after_call(call: FinishedCall, rules: CrmRules) -> CallOutcome:
    """An answered call closes the open tasks (in either direction) and, when long enough,
    makes a new lead `contacted`; a missed or abandoned call makes a follow-up task."""
    if call.state == "answered":
        talk = call.talk_seconds or 0.0
        if talk >= rules.contacted_talk_seconds:
            entry = HistoryEntry(SYSTEM, "status", "new", "contacted", call.ended_at)
            return CallOutcome("new", "contacted", close_tasks=True, history=(entry,))
        return CallOutcome(close_tasks=True)
    if call.state in ("missed", "abandoned"):
        task = FollowUp(f"t-{call.call_id}", call.call_id, call.ended_at + rules.followup_delay)
        entry = HistoryEntry(SYSTEM, "task", "", f"follow-up {call.state} call", call.ended_at)
        return CallOutcome(follow_up=task, history=(entry,))
    return CallOutcome()


def after_disposition(
    disposition: Disposition, status_now: str, who: str, at: datetime, note: str = ""
) -> CallOutcome:
    """A disposition set on a call by `who`: its status, its closing of tasks, its spam mark."""
    entries = [
        HistoryEntry(who, "disposition", "", disposition.name + (": " + note if note else ""), at)
    ]
    moves = bool(disposition.status) and disposition.status != status_now
    if moves:
        entries.append(HistoryEntry(who, "status", status_now, disposition.status, at))
    if disposition.spam:
        entries.append(HistoryEntry(who, "spam", "no", "yes", at))
    return CallOutcome(
        status_from=status_now if moves else "",
        status_to=disposition.status if moves else "",
        close_tasks=disposition.closes_tasks,
        spam=disposition.spam,
        history=tuple(entries),
    )


@dataclass(frozen=True)
class LeadEdit:
    """What a person may set on a contact of a site (None: left as it is)."""

    status: str | None = None
    tags: tuple[str, ...] | None = None
    notes: str | None = None
    name: str | None = None
    spam: bool | None = None
    test: bool | None = None

    def changed_from(self, stored: LeadEdit) -> LeadEdit:
        """Only the fields this edit really changes from `stored`."""
        kept = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
            and getattr(self, f.name) != getattr(stored, f.name)
        }
        return LeadEdit(**kept)


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(value)
    return "" if value is None else str(value)


def edit_entries(edit: LeadEdit, stored: LeadEdit, who: str, at: datetime) -> list[HistoryEntry]:
    """The history of an edit (already cut to its changes by `changed_from`)."""
    return [
        HistoryEntry(
            who, f.name, _shown(getattr(stored, f.name)), _shown(getattr(edit, f.name)), at
        )
        for f in dataclasses.fields(edit)
        if getattr(edit, f.name) is not None
    ]


class NumberFacts(NamedTuple):
    """What phonenumbers knows of a number ('' where it knows nothing)."""

    region: str
    line_type: str
    carrier: str
    geo: str


def number_facts(e164: str) -> NumberFacts:
    """The region, line type, carrier and place of an E.164 number, in English. Loads
    phonenumbers' carrier and geocoder data on first use (a quarter second): call on a thread."""
    # The data modules are big: loaded by the first lookup, not by every process at start.
    from phonenumbers import carrier, geocoder

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return NumberFacts("", "", "", "")
    kind = phonenumbers.number_type(parsed)
    names = {v: k.lower() for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper()}
    return NumberFacts(
        phonenumbers.region_code_for_number(parsed) or "",
        names.get(kind, "unknown"),
        carrier.name_for_number(parsed, "en") or "",
        geocoder.description_for_number(parsed, "en") or "",
    )


class CrmInputError(ValueError):
    """An edit that cannot be made; the message says what to send."""


MAX_TAGS = 20
MAX_TAG = 40
MAX_NOTES = 5000
MAX_NAME = 100
MAX_NOTE = 2000
_EDIT_KEYS = ("site", "status", "tags", "notes", "name", "spam", "test")


def _text(raw: object, key: str, limit: int) -> str:
    if not isinstance(raw, str) or len(raw) > limit:
        raise CrmInputError(f"'{key}' must be text of at most {limit} characters")
    # NUL and lone surrogates cannot be stored; other control characters serve nobody.
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in raw):
        raise CrmInputError(f"'{key}' holds characters that cannot be stored")
    return raw


def _tags(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):  # a form's "a, b" field
        raw = [t.strip() for t in raw.split(",") if t.strip()]
    if not isinstance(raw, list) or len(raw) > MAX_TAGS:
        raise CrmInputError(f"'tags' must be a list of at most {MAX_TAGS} tags")
    tags = [_text(t, "tags", MAX_TAG).strip() for t in raw]
    if not all(t and t.isprintable() for t in tags):
        raise CrmInputError("each tag must be printable text, not empty")
    return tuple(dict.fromkeys(tags))


def lead_edit_from(raw: Mapping[str, object]) -> tuple[str, LeadEdit]:
    """The site named (or '') and the edit of a PATCH body or a form, checked."""
    unknown = sorted(k for k in raw if k not in _EDIT_KEYS)
    if unknown:
        raise CrmInputError(f"unknown field {unknown[0]!r} (known: {', '.join(_EDIT_KEYS)})")
    status = raw.get("status")
    if status is not None and status not in STATUSES:
        raise CrmInputError(f"'status' must be one of {', '.join(STATUSES)}")
    for key in ("spam", "test"):
        if key in raw and not isinstance(raw[key], bool):
            raise CrmInputError(f"'{key}' must be true or false")
    edit = LeadEdit(
        status=str(status) if status is not None else None,
        tags=_tags(raw["tags"]) if "tags" in raw else None,
        notes=_text(raw["notes"], "notes", MAX_NOTES) if "notes" in raw else None,
        name=_text(raw["name"], "name", MAX_NAME).strip() if "name" in raw else None,
        spam=bool(raw["spam"]) if "spam" in raw else None,
        test=bool(raw["test"]) if "test" in raw else None,
    )
    site = raw.get("site", "")
    return _text(site, "site", 64), edit


def disposition_from(rules: CrmRules, name: object, note: object) -> tuple[Disposition, str]:
    """A configured disposition by name and its note, checked."""
    found = rules.disposition(name) if isinstance(name, str) else None
    if found is None:
        names = ", ".join(d.name for d in rules.dispositions)
        raise CrmInputError(f"'disposition' must be one of: {names}")
    return found, _text("" if note is None else note, "note", MAX_NOTE).strip()
