"""A seeded, realistic history of visits and calls for the demo site (`ctgw demo seed`).

Pure: one random.Random(seed) and the moment `now` given. Numbers are leased, heartbeated and
calls attributed by the gateway's own rules (numberpool's Site and Pool on a copy of the site),
so the rows are the ones the gateway would have stored for such traffic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from gateway.demo_calls import CallBook, CallPlan, plan_calls, poisson, row_id
from gateway.demo_channels import (
    BOT_AGENTS,
    BROWSERS,
    CHANNELS,
    HOUR_WEIGHTS,
    NEWSLETTER,
    SITE_URL,
    WEEKDAY_WEIGHTS,
    Channel,
)
from gateway.store.history_import import HistoryCall, HistorySession
from numberpool.lease import Lease
from numberpool.pool import Pool
from numberpool.site import NumberOffer, OfferKind, Site
from numberpool.visit import VisitContext, visit_from_url
from reports.costs import CostRow

__all__ = ["DemoHistory", "generate_history"]

# Usual visits a day at the start of the period; the trend adds half by its end.
_VISITS_A_DAY = 210.0
_TREND = 0.5
_BOTS = 0.03  # share of visits from crawlers
_RETURNING = 0.15  # share of visits from a visitor seen before
_CAPPED = 0.01  # a client holding its share of numbers already (an office network): overflow
_BOUNCE = 0.35  # visits that leave before the first heartbeat
_NO_LEASE_LIFE = timedelta(minutes=15)  # the session desk's life of a session without leases
_LONGEST_STAY = 1800.0  # seconds a visit keeps its page open, at most
_NEWSLETTER_VISITS = 45  # in the hour after a monthly e-mail goes out


@dataclass(frozen=True)
class DemoHistory:
    site: str
    sessions: list[HistorySession]
    leases: list[Lease]
    exhausted: list[tuple[str, datetime, str]]  # pool id, when, the session shown the overflow
    calls: list[HistoryCall]
    costs: list[CostRow]


def generate_history(
    site: Site,
    *,
    now: datetime,
    days: int = 90,
    seed: int = 1,
    tz: ZoneInfo | None = None,
    route_for: Callable[[str], str] = lambda dialed: "",
) -> DemoHistory:
    """`days` of visits and calls ending at `now` for `site` (left unchanged: its pools are
    copied), in the shape of the site's zone `tz` (UTC when None)."""
    demo = _Visits(site, now, days, random.Random(seed), tz or ZoneInfo("UTC"))
    demo.run()
    calls = plan_calls(
        CallPlan(demo.site, demo.start, demo.now, demo.tz, route_for),
        demo.rng,
        demo.calls,
        {s.session_id: s.visit for s in demo.sessions},
    )
    leases = sorted(
        (lease for pool in demo.site.pools for lease in pool.leases()),
        key=lambda lease: (lease.started_at, lease.lease_id),
    )
    return DemoHistory(
        site.key,
        demo.sessions,
        leases,
        demo.exhausted,
        [HistoryCall(record, spam) for record, spam in calls],
        _costs(demo.rng, demo.start, demo.now, demo.tz),
    )


def _fresh(site: Site) -> Site:
    """A copy of `site` with empty pools of the same numbers and rules."""
    pools = [
        Pool(p.pool_id, p.target, p.numbers, p.rules, p.overflow, p.require_params)
        for p in site.pools
    ]
    return Site(site.key, pools, list(site.static_numbers), list(site.rules), site.bot_user_agents)


def _token(rng: random.Random, length: int) -> str:
    """`length` URL-safe base64 characters, from one draw of random bits."""
    bits = rng.getrandbits(6 * length)
    return "".join(_B64[(bits >> (6 * i)) & 63] for i in range(length))


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _click_value(rng: random.Random, click_id: str) -> tuple[str, str]:
    """The parameter and value an ad network adds to the landing URL."""
    if click_id == "gclid" and rng.random() < 0.12:
        return "gbraid", "0AAAAAD" + _token(rng, 24)  # an iOS app's click
    if click_id == "gclid":
        return "gclid", "Cj0KCQiA" + _token(rng, 48)
    if click_id == "msclkid":
        return "msclkid", f"{rng.getrandbits(128):032x}"
    if click_id == "fbclid":
        return "fbclid", "IwAR" + _token(rng, 56)
    return "bd_vid", str(rng.randrange(10**19, 10**20))


class _Visits:
    """The period's visits, hour by hour in time order, leased as the session desk leases."""

    def __init__(
        self, site: Site, now: datetime, days: int, rng: random.Random, tz: ZoneInfo
    ) -> None:
        self.site = _fresh(site)
        self.now = now.astimezone(UTC)
        self.start = self.now - timedelta(days=days)
        # The last visits end early enough that no seeded lease is live or can claim a call at
        # `now`: the gateway served next attributes its real calls to real visits only.
        self.visits_end = self.now - _quiet(self.site)
        self.rng = rng
        self.tz = tz
        self.sessions: list[HistorySession] = []
        self.exhausted: list[tuple[str, datetime, str]] = []
        self.calls = CallBook(rng)
        # Visitors seen, and when each one's latest session ended (a returning visitor's new
        # session starts after it).
        self._visitors: list[str] = []
        self._gone_at: dict[str, datetime] = {}

    def run(self) -> None:
        newsletters = self._newsletter_days()
        hour = self.start.replace(minute=0, second=0, microsecond=0)
        span = (self.now - self.start).total_seconds()
        mean_weight = sum(HOUR_WEIGHTS) / 24
        while hour < self.visits_end:
            local = hour.astimezone(self.tz)
            trend = 1 + _TREND * (hour - self.start).total_seconds() / span
            mean = (
                _VISITS_A_DAY
                / 24
                * trend
                * HOUR_WEIGHTS[local.hour]
                / mean_weight
                * WEEKDAY_WEIGHTS[local.weekday()]
            )
            arrivals = [
                (self._moment(hour), self._channel()) for _ in range(poisson(self.rng, mean))
            ]
            if local.hour == 10 and local.date() in newsletters:
                arrivals += [(self._moment(hour), NEWSLETTER) for _ in range(_NEWSLETTER_VISITS)]
            for at, channel in sorted(arrivals, key=lambda a: a[0]):
                if self.start <= at < self.visits_end:
                    self._visit(at, channel)
            hour += timedelta(hours=1)

    def _moment(self, hour: datetime) -> datetime:
        return hour + timedelta(microseconds=self.rng.randrange(3_600_000_000))

    def _channel(self) -> Channel:
        return self.rng.choices(CHANNELS, weights=[c.share for c in CHANNELS])[0]

    def _newsletter_days(self) -> set[date]:
        """The first Tuesday of each month in the period: the e-mail goes out at 10:00."""
        found: set[date] = set()
        day = self.start.astimezone(self.tz).date()
        while day <= self.now.astimezone(self.tz).date():
            if day.weekday() == 1 and day.day <= 7:
                found.add(day)
            day += timedelta(days=1)
        return found

    def _visitor(self, at: datetime) -> str:
        """A returning visitor whose last session has ended, or a new one."""
        if self._visitors and self.rng.random() < _RETURNING:
            visitor = self.rng.choice(self._visitors[-3000:])
            if self._gone_at[visitor] < at:
                return visitor
        visitor = row_id(at, self.rng)
        self._visitors.append(visitor)
        return visitor

    def _landing(self, channel: Channel) -> VisitContext:
        rng = self.rng
        params = {
            "utm_source": channel.source,
            "utm_medium": channel.medium,
            "utm_campaign": channel.campaign,
            "utm_term": rng.choice(channel.terms),
            "utm_content": rng.choice(channel.contents),
        }
        query = {key: value for key, value in params.items() if value}
        if channel.click_id:
            key, value = _click_value(rng, channel.click_id)
            query[key] = value
        url = SITE_URL + rng.choice(channel.landings)
        if query:
            url += "?" + urlencode(query)
        bot = rng.random() < _BOTS
        agent = rng.choice(BOT_AGENTS if bot else BROWSERS)
        return visit_from_url(url, rng.choice(channel.referrers), agent)

    def _visit(self, at: datetime, channel: Channel) -> None:
        rng = self.rng
        visit = self._landing(channel)
        bot = self.site.is_bot(visit.user_agent)
        visitor = self._visitor(at)
        session_id = row_id(at, rng)
        lease_ids = (f"{session_id}.{i}" for i in range(1, 1000))
        capped = rng.random() < _CAPPED
        offers = tuple(
            self.site.offer(
                visit, session_id, visitor, at, lease_ids.__next__, may_lease=not capped
            )
        )
        for offer in offers:
            if offer.kind is OfferKind.OVERFLOW:
                pool = next(p for p in self.site.pools if p.target == offer.target)
                self.exhausted.append((pool.pool_id, at, session_id))
        stay = (
            0.0
            if bot or rng.random() < _BOUNCE
            else min(_LONGEST_STAY, 30 + rng.expovariate(1 / 180))
        )
        last_seen, expires = self._heartbeats(session_id, at, offers, stay)
        session = HistorySession(session_id, visitor, visit, offers, at, last_seen, expires)
        self.sessions.append(session)
        self._gone_at[visitor] = expires
        if not bot:
            self.calls.visit_calls(session, channel.call_rate, stay, self.tz)

    def _heartbeats(
        self, session_id: str, at: datetime, offers: tuple[NumberOffer, ...], stay: float
    ) -> tuple[datetime, datetime]:
        """The session's heartbeats, a minute apart while the page is open: its last one and
        when the session expires, as the session desk stores them."""
        leases = [o.lease for o in offers if o.lease is not None]
        last_seen = at
        expires = max((lease.until for lease in leases), default=at + _NO_LEASE_LIFE)
        for beat in range(60, int(stay) + 1, 60):
            moment = at + timedelta(seconds=beat)
            renewed = [
                fresh
                for lease in leases
                if (pool := self.site.pool_by_id(lease.pool_id)) is not None
                and (fresh := pool.heartbeat(lease.number, session_id, moment)) is not None
            ]
            if leases and not renewed:
                break
            leases, last_seen = renewed, moment
            expires = max((lease.until for lease in renewed), default=moment + _NO_LEASE_LIFE)
        return last_seen, expires


def _quiet(site: Site) -> timedelta:
    """How long before `now` visits stop: the longest visit, then its lease's grace and
    attribution window, and a minute to spare."""
    rules = [pool.rules for pool in site.pools]
    after = max(
        (r.grace + max(r.attribution_window, r.cooldown) for r in rules), default=_NO_LEASE_LIFE
    )
    return timedelta(seconds=_LONGEST_STAY, minutes=1) + after


def _costs(rng: random.Random, start: datetime, now: datetime, tz: ZoneInfo) -> list[CostRow]:
    """Each paid campaign's cost per calendar month of the period (site's days, inclusive)."""
    first, last = start.astimezone(tz).date(), now.astimezone(tz).date()
    months: list[tuple[date, date]] = []
    day = first
    while day <= last:
        following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        months.append((day, min(last, following - timedelta(days=1))))
        day = following
    span = max(1, (last - first).days)
    costs: list[CostRow] = []
    for channel in CHANNELS:
        if not channel.daily_cost:
            continue
        for begin, end in months:
            days = (end - begin).days + 1
            trend = 1 + _TREND * ((begin - first).days + days / 2) / span
            amount = channel.daily_cost * days * trend * rng.uniform(0.92, 1.08)
            costs.append(CostRow(channel.source, channel.campaign, begin, end, round(amount, 2)))
    return costs
