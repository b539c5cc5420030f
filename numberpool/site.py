"""A site's swap rules: which number a visit sees, and which visit a call belongs to."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from numberpool.claims import decide
from numberpool.lease import CallNote
from numberpool.pool import Lease, Pool
from numberpool.visit import VisitContext

__all__ = [
    "DEFAULT_BOT_USER_AGENTS",
    "Attribution",
    "AttributionKind",
    "NumberOffer",
    "OfferKind",
    "Rule",
    "Site",
    "StaticNumber",
]


# User-agent substrings (lower case) that never lease, whatever the site lists on top: crawlers,
# link previews, HTTP libraries and command-line clients, headless and automated browsers. A
# person browsing sends none of them; each of these would otherwise hold a number nobody sees.
DEFAULT_BOT_USER_AGENTS: tuple[str, ...] = (
    # crawlers, monitors and link previews
    "bot",
    "crawler",
    "spider",
    "slurp",
    "facebookexternalhit",
    "lighthouse",
    "pingdom",
    "uptime",
    # HTTP libraries and command-line clients
    "curl",
    "wget",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "libwww",
    "lwp::",
    "java/",
    "apache-httpclient",
    "dalvik/",
    "node-fetch",
    "undici",
    "axios/",
    "httpie",
    "postmanruntime",
    "insomnia",
    "guzzlehttp",
    "scrapy",
    "powershell",
    # headless and automated browsers
    "headless",
    "phantomjs",
    "selenium",
    "webdriver",
    "puppeteer",
    "playwright",
    "cypress",
    "htmlunit",
)


# User agents remembered per site: visitors send a few thousand distinct ones, and a cached
# answer costs 0.1 us, the search of forty markers 2.8 us.
_KNOWN_AGENTS = 4096


class OfferKind(StrEnum):
    POOL = "pool"  # a number leased to this session
    OVERFLOW = "overflow"  # the pool was exhausted
    STATIC = "static"  # a rule chose a static source number
    NONE = "none"  # no swap: the page keeps its own number


class AttributionKind(StrEnum):
    ACTIVE = "active"
    PROBABLE = "probable"
    OVERFLOW = "overflow"
    STATIC = "static"
    UNATTRIBUTED = "unattributed"


@dataclass(frozen=True)
class StaticNumber:
    """A number with a fixed source: print, radio, billboard, or a referrer rule's number."""

    number: str
    source: str
    medium: str = ""
    campaign: str = ""


@dataclass(frozen=True)
class Rule:
    """Show `number` instead of `target` when a URL parameter or the referrer matches."""

    number: str
    target: str
    param: str = ""
    value: str = ""
    referrer_contains: str = ""

    def matches_param(self, visit: VisitContext) -> bool:
        if not self.param:
            return False
        found = visit.param(self.param)
        return found is not None and (not self.value or found == self.value)

    def matches_referrer(self, visit: VisitContext) -> bool:
        needle = self.referrer_contains.lower()
        return bool(needle) and needle in visit.referrer.lower()


class NumberOffer(NamedTuple):
    """What the page shows in place of `target`, and the lease behind it, if any."""

    target: str
    number: str
    kind: OfferKind
    lease: Lease | None = None


@dataclass(frozen=True)
class Attribution:
    """Which visit a call on `dialed` at some time belongs to, and how sure we are.

    `confidence` (0-1, numberpool/claims.py says how) and the rival visit that could claim the
    call too (`other_*`, empty when none) matter for `active` and `probable` only."""

    kind: AttributionKind
    site: str
    dialed: str
    session_id: str = ""
    visitor_id: str = ""
    static: StaticNumber | None = None
    confidence: float = 1.0
    other_session_id: str = ""
    other_visitor_id: str = ""


@dataclass
class Site:
    """One website's pools, static numbers and rules."""

    key: str
    pools: list[Pool] = field(default_factory=list)
    static_numbers: list[StaticNumber] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    bot_user_agents: Sequence[str] = ()  # on top of DEFAULT_BOT_USER_AGENTS
    _bots: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _known: dict[str, bool] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        # One search for every marker: a session is decided in tens of microseconds, and the
        # markers are forty.
        own = (b.lower() for b in self.bot_user_agents)
        markers = dict.fromkeys([*DEFAULT_BOT_USER_AGENTS, *own])
        self._bots = re.compile("|".join(re.escape(m) for m in markers if m))

    def is_bot(self, user_agent: str) -> bool:
        """Whether the user agent is not a person's browser (default list plus the site's);
        an empty one counts as a bot."""
        bot = self._known.get(user_agent)
        if bot is None:
            bot = not user_agent or self._bots.search(user_agent.lower()) is not None
            if len(self._known) >= _KNOWN_AGENTS:
                self._known.clear()  # agents made up per request: no worse than no cache
            self._known[user_agent] = bot
        return bot

    def offer(
        self,
        visit: VisitContext,
        session_id: str,
        visitor_id: str,
        at: datetime,
        new_lease_id: Callable[[], str],
        *,
        heartbeats: bool = True,
        may_lease: bool = True,
    ) -> list[NumberOffer]:
        """Decide each target's number for a new session: rules, then pools (leasing).

        `may_lease=False` (the client holds its share of the pool already): the overflow
        number, as when the pool is exhausted."""
        offers: list[NumberOffer] = []
        bot = self.is_bot(visit.user_agent)
        for target in self.targets():
            rule = self._matching_rule(target, visit)
            pool = self._pool_for(target)
            if rule is not None:
                offers.append(NumberOffer(target, rule.number, OfferKind.STATIC))
            elif pool is None or bot or not self._allowed(pool, visit):
                offers.append(NumberOffer(target, target, OfferKind.NONE))
            else:
                lease = (
                    pool.lease(new_lease_id(), session_id, visitor_id, at, heartbeats=heartbeats)
                    if may_lease
                    else None
                )
                if lease is not None:
                    offers.append(NumberOffer(target, lease.number, OfferKind.POOL, lease))
                elif pool.overflow:
                    offers.append(NumberOffer(target, pool.overflow, OfferKind.OVERFLOW))
                else:
                    offers.append(NumberOffer(target, target, OfferKind.NONE))
        return offers

    def attribute(
        self,
        dialed: str,
        at: datetime,
        *,
        known_visitors: Set[str] = frozenset(),
        caller: str = "",
    ) -> Attribution:
        """Attribute a call on `dialed` at `at` from `caller`: active, probable, overflow,
        static or none, and remember who called whom (Pool.note_call).

        `known_visitors`: the visitors this caller's earlier calls went to; one of them wins a
        call two visits could claim."""
        for static in self.static_numbers:
            if static.number == dialed:
                return Attribution(AttributionKind.STATIC, self.key, dialed, static=static)
        for pool in self.pools:
            if dialed == pool.overflow:
                return Attribution(AttributionKind.OVERFLOW, self.key, dialed)
            if dialed not in pool:
                continue
            candidates = pool.candidates_at(dialed, at, caller)
            notes = pool.calls_on(dialed)
            claim = decide(candidates, at, pool.rules, known_visitors, caller=caller, notes=notes)
            if claim is None:
                continue
            lease, rival = claim.lease, claim.rival
            doubt = claim.doubt.visitor_id if claim.doubt else ""
            note = CallNote(caller, lease.visitor_id, doubt, claim.odds, at)
            pool.note_call(dialed, note, at)
            alone_and_live = rival is None and lease.live_at(at)
            return Attribution(
                AttributionKind.ACTIVE if alone_and_live else AttributionKind.PROBABLE,
                self.key,
                dialed,
                lease.session_id,
                lease.visitor_id,
                confidence=claim.confidence,
                other_session_id=rival.session_id if rival else "",
                other_visitor_id=rival.visitor_id if rival else "",
            )
        return Attribution(AttributionKind.UNATTRIBUTED, self.key, dialed)

    def owns(self, number: str) -> bool:
        """Whether a call on `number` belongs to this site."""
        return any(number in p or number in (p.overflow, p.target) for p in self.pools) or any(
            s.number == number for s in self.static_numbers
        )

    def targets(self) -> list[str]:
        seen: dict[str, None] = {}
        for pool in self.pools:
            seen.setdefault(pool.target)
        for rule in self.rules:
            seen.setdefault(rule.target)
        return list(seen)

    def pool_by_id(self, pool_id: str) -> Pool | None:
        return next((p for p in self.pools if p.pool_id == pool_id), None)

    def _pool_for(self, target: str) -> Pool | None:
        return next((p for p in self.pools if p.target == target), None)

    def _allowed(self, pool: Pool, visit: VisitContext) -> bool:
        required = pool.require_params
        return not required or any(visit.param(name) for name in required)

    def _matching_rule(self, target: str, visit: VisitContext) -> Rule | None:
        # Precedence from the field: URL/parameter rules first, then referrer rules.
        candidates = [r for r in self.rules if r.target == target]
        for rule in candidates:
            if rule.matches_param(visit):
                return rule
        for rule in candidates:
            if rule.matches_referrer(visit):
                return rule
        return None
