"""The demo history's calls: who calls which number when, and how each call went; attributed in
time order by the site's own rules, as the FastAGI route and the AMI ledger would have stored
them (gateway/demo_history.py makes the visits)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gateway.demo_channels import (
    AGENTS,
    CALLER_AREAS,
    CALLER_NAMES,
    HOUR_WEIGHTS,
    OFFICE_NUMBER,
    SPAM_NAMES,
    WEEKDAY_WEIGHTS,
)
from gateway.store.history_import import HistorySession
from gateway.store.times import ts
from numberpool.calls import CallAttribution, CallRecord, attribution_snapshot, unanswered_state
from numberpool.site import Site
from numberpool.visit import VisitContext

__all__ = ["CallBook", "CallPlan", "plan_calls", "poisson", "row_id"]

_ANONYMOUS = 0.03  # callers who withhold their number
_OTHER_PHONE = 0.09  # a caller seen before, calling about a new visit (another device)
_CALL_BACK = 0.08  # a caller who calls again minutes later (after a miss, or to add something)
_STATIC_A_DAY = 0.55  # calls a weekday on each static (print, billboard) number
_SITE_NUMBER_A_DAY = 0.8  # calls on a pool's own number: saved from an old visit, or a listing
_SPAM_A_DAY = 0.15
_RECENT_VISITORS = 5  # the route's caller_visitors limit


def row_id(at: datetime, rng: random.Random) -> str:
    """An id in the store's format (gateway/store/ids.py): 48 bits of milliseconds at `at`, then
    80 random bits, as 32 hex digits; time-ordered like the ids the gateway makes."""
    return f"{int(at.timestamp() * 1000):012x}{rng.getrandbits(80):020x}"


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count (Knuth's method; the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass(frozen=True)
class CallPlan:
    """The site and period the calls are for; `route_for` gives a dialed number's dial string."""

    site: Site
    start: datetime
    now: datetime
    tz: ZoneInfo
    route_for: Callable[[str], str]


class _Intent(NamedTuple):
    at: datetime
    dialed: str
    caller: str
    spam: bool = False
    test: bool = False


class _Outcome(NamedTuple):
    state: str
    setup: float  # from the call's start to the agents' phones ringing
    ring: float
    talk: float | None
    agent: str
    cause: str


def _call_hours(local: datetime) -> float:
    """How much likelier than average a visit at this local time leads to a call."""
    weekday, hour = local.weekday(), local.hour
    if weekday < 5 and 8 <= hour < 18:
        return 1.0
    if weekday == 5 and 9 <= hour < 13:
        return 0.8
    return 0.5 if 7 <= hour < 22 else 0.25


def _open(local: datetime) -> bool:
    weekday, hour = local.weekday(), local.hour
    return (weekday < 5 and 8 <= hour < 18) or (weekday == 5 and 9 <= hour < 13)


class CallBook:
    """The calls planned so far, and the callers: one number (and CNAM name) per caller."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.intents: list[_Intent] = []
        self.names: dict[str, str] = {OFFICE_NUMBER: "DEMO PLUMBING CO"}
        self._caller_of: dict[str, str] = {}  # visitor id -> the number it called from
        self._customers: list[str] = []
        self._taken: set[str] = {OFFICE_NUMBER}

    def visit_calls(
        self, session: HistorySession, call_rate: float, stay: float, tz: ZoneInfo
    ) -> None:
        """Maybe a call about this visit: mostly while the page is open, some soon after it
        closed, a few days later on the number the visitor noted."""
        rng = self.rng
        if not session.offers or rng.random() >= call_rate * _call_hours(
            session.created_at.astimezone(tz)
        ):
            return
        dialed = session.offers[0].number
        roll = rng.random()
        if roll < 0.85:
            at = session.created_at + timedelta(seconds=rng.uniform(5, stay + 20))
        elif roll < 0.97:
            at = session.expires_at + timedelta(seconds=rng.uniform(60, 3300))
        else:
            at = session.created_at + timedelta(days=rng.uniform(1, 10))
        caller = self.caller(session.visitor_id)
        self.intents.append(_Intent(at, dialed, caller))
        if caller and rng.random() < _CALL_BACK:
            again = at + timedelta(minutes=rng.uniform(2, 30))
            self.intents.append(_Intent(again, dialed, caller))

    def caller(self, visitor_id: str | None) -> str:
        """The number a caller calls from ('' when withheld); a visitor keeps its number."""
        known = self._caller_of.get(visitor_id) if visitor_id else None
        if known is not None:
            return known
        roll = self.rng.random()
        if roll < _ANONYMOUS:
            return ""
        if roll < _ANONYMOUS + _OTHER_PHONE and self._customers:
            number = self.rng.choice(self._customers)
        else:
            number = self.new_caller()
        if visitor_id:
            self._caller_of[visitor_id] = number
        return number

    def new_caller(self, *, spam: bool = False) -> str:
        """A number that has not called yet (fictional 555-01XX), with its CNAM name."""
        rng = self.rng
        for _ in range(50):
            number = f"+1{rng.choice(CALLER_AREAS)}55501{rng.randrange(100):02d}"
            if number not in self._taken:
                break
        else:
            return rng.choice(self._customers)  # every fictional number has called: a repeat
        self._taken.add(number)
        self.names[number] = rng.choice(SPAM_NAMES if spam else CALLER_NAMES)
        if not spam:
            self._customers.append(number)
        return number


def _local_moment(rng: random.Random, day: date, tz: ZoneInfo, hours: range) -> datetime:
    """A moment of `day` in the site's zone within `hours`, shaped like its visits."""
    hour = rng.choices(list(hours), weights=[HOUR_WEIGHTS[h] for h in hours])[0]
    local = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
    return (local + timedelta(seconds=rng.uniform(0, 3600))).astimezone(UTC)


def _daily_calls(plan: CallPlan, rng: random.Random, book: CallBook) -> None:
    """The calls no visit explains: static numbers, the site's own numbers, robocalls, and the
    test calls made when tracking was set up."""
    first = plan.start.astimezone(plan.tz).date()
    day, last = first, plan.now.astimezone(plan.tz).date()
    pool_numbers = [n for pool in plan.site.pools for n in pool.numbers]
    targets = [pool.target for pool in plan.site.pools]
    while day <= last:
        busy = WEEKDAY_WEIGHTS[day.weekday()] ** 2
        for static in plan.site.static_numbers:
            for _ in range(poisson(rng, _STATIC_A_DAY * busy)):
                book.intents.append(
                    _Intent(
                        _local_moment(rng, day, plan.tz, range(8, 19)),
                        static.number,
                        book.caller(None),
                    )
                )
        for target in targets:
            for _ in range(poisson(rng, _SITE_NUMBER_A_DAY * busy)):
                book.intents.append(
                    _Intent(
                        _local_moment(rng, day, plan.tz, range(7, 21)), target, book.caller(None)
                    )
                )
        if targets and rng.random() < _SPAM_A_DAY:
            dialed = rng.choice(targets + pool_numbers)
            at = _local_moment(rng, day, plan.tz, range(9, 18))
            book.intents.append(_Intent(at, dialed, book.new_caller(spam=True), spam=True))
        day += timedelta(days=1)
    setup_day = first + timedelta(days=1)
    tested = [*targets[:1], *pool_numbers[:1], *(s.number for s in plan.site.static_numbers[:1])]
    for minutes, dialed in enumerate(tested):
        at = datetime(setup_day.year, setup_day.month, setup_day.day, 10, tzinfo=plan.tz)
        at += timedelta(minutes=3 * minutes, seconds=rng.uniform(0, 60))
        book.intents.append(_Intent(at.astimezone(UTC), dialed, OFFICE_NUMBER, test=True))


def _outcome(rng: random.Random, local: datetime, spam: bool) -> _Outcome:
    """How a call went: answered by an agent, or missed or abandoned after ringing."""
    open_now = _open(local)
    setup = round(rng.uniform(0.3, 1.2), 3)
    answered = 0.7 if spam else 0.85 if open_now else 0.2
    if rng.random() < answered:
        ring = round(rng.uniform(3, 22), 3)
        talk = rng.uniform(4, 25) if spam else min(2400.0, 20 + rng.lognormvariate(4.8, 0.8))
        endpoints = [endpoint for endpoint, _ in AGENTS]
        weights = [weight for _, weight in AGENTS]
        agent = rng.choices(endpoints, weights)[0] if open_now else "PJSIP/oncall"
        return _Outcome("answered", setup, ring, round(talk, 3), agent, "16 Normal Clearing")
    hung_up_early = rng.random() < 0.4
    ring = round(rng.uniform(2, 12.5) if hung_up_early else rng.uniform(16, 45), 3)
    state = unanswered_state(setup + ring)
    cause = "16 Normal Clearing" if state == "abandoned" else "19 User alerting, no answer"
    return _Outcome(state, setup, ring, None, "", cause)


def plan_calls(
    plan: CallPlan, rng: random.Random, book: CallBook, visits: Mapping[str, VisitContext]
) -> list[tuple[CallRecord, bool]]:
    """Every call of the period as stored, oldest first, each with its spam mark; a call still
    going on at `now` is left out."""
    _daily_calls(plan, rng, book)
    contacts: dict[str, str] = {}
    visitors_of: dict[str, list[str]] = {}  # caller -> visitors its attributed calls went to
    calls: list[tuple[CallRecord, bool]] = []
    for seq, intent in enumerate(sorted(book.intents, key=lambda i: i.at)):
        outcome = _outcome(rng, intent.at.astimezone(plan.tz), intent.spam)
        seconds = outcome.setup + outcome.ring + (outcome.talk or 0.0)
        if intent.at < plan.start or intent.at + timedelta(seconds=seconds) > plan.now:
            continue
        seen = visitors_of.setdefault(intent.caller, []) if intent.caller else []
        known = frozenset(seen[-_RECENT_VISITORS:])
        attribution = plan.site.attribute(intent.dialed, intent.at, known_visitors=known)
        visit = visits.get(attribution.session_id) if attribution.session_id else None
        if attribution.visitor_id and intent.caller:
            seen.append(attribution.visitor_id)
        contact_id = contacts.get(intent.caller)
        first_time = contact_id is None
        if intent.caller and contact_id is None:
            contact_id = contacts[intent.caller] = f"{rng.getrandbits(64):016x}"
        record = _record(plan, intent, outcome, book.names.get(intent.caller, ""))
        record = dataclasses.replace(
            record,
            call_id=row_id(intent.at, rng),
            linkedid=f"{int(intent.at.timestamp())}.{seq}",
            attribution=attribution_snapshot(attribution, visit),
            first_time=first_time,
            contact_id=contact_id,
        )
        calls.append((record, intent.spam))
    return calls


def _record(plan: CallPlan, intent: _Intent, outcome: _Outcome, name: str) -> CallRecord:
    """The call's record as AMI leaves it once the call ended (ids and attribution to add)."""
    ringing = intent.at + timedelta(seconds=outcome.setup)
    answered = ringing + timedelta(seconds=outcome.ring) if outcome.talk is not None else None
    ended = (
        answered + timedelta(seconds=outcome.talk)
        if answered is not None and outcome.talk is not None
        else ringing + timedelta(seconds=outcome.ring)
    )
    return CallRecord(
        call_id="",
        site=plan.site.key,
        dialed=intent.dialed,
        started_at=ts(intent.at),
        state=outcome.state,
        attribution=CallAttribution("unattributed"),
        caller=intent.caller,
        caller_name=name,
        answered_at=ts(answered) if answered is not None else None,
        ended_at=ts(ended),
        agent=outcome.agent,
        route=plan.route_for(intent.dialed),
        ring_seconds=outcome.ring,
        talk_seconds=outcome.talk,
        hangup_cause=outcome.cause,
        test_call=intent.test,
    )
