"""Four gateways on one PostgreSQL (issue 15): thousands of sessions through all four, calls
routed on any node, one node killed with `kill -9` mid-load.

Checked in the store, not in the gateways' word: no number of a pool leased twice at
overlapping times; every session answered 201 is stored with the lease of each pool number it
was shown; every routed call is attributed exactly as one node would (the visit whose lease
covers the call's time, `active`); after the kill the others go on answering, the dead node's
sites are served again after a short hand-over, and leases answered before the kill still
hold (their heartbeats answer 200 on the survivors) and are still attributed after it.

Eight sites, so each node owns two. Each site has a short pool (3 s leases: numbers cycle and
contend all the time) and a long pool (10 min leases, a witness of each visit that got one:
still attributed after the hand-over).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import types
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.api.conftest import BROWSER
from tests.api.lease_overlaps import (
    CALL_ROWS,
    DOUBLE_LEASES,
    DOUBLED,
    LEASE_ROWS,
    OVERLAPS,
    SHARED,
)
from tests.api.test_call_routing import call_env, routed
from tests.lab.postgres import PgCluster
from tests.postgres.conftest import drop_database, migrated_database
from tests.postgres.gateways import Gateway, Gateways
from tests.unit.test_agi import fake_asterisk

# Runs in 30-45 s here (load average 5-8); the timeout bounds a hang.
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

AREAS = (415, 212, 312, 213, 617, 206, 305, 404)
SITES = {f"s{i}": area for i, area in enumerate(AREAS)}
NODES = 4
BEFORE_KILL = 1500  # sessions answered before the kill, at least
AFTER_KILL = 1500  # and after it
# And for at least this long each side of the kill: the short pools' numbers are leased again
# and again (a 3 s lease), so nodes and hand-overs contend for the same numbers.
PHASE_S = 10.0
CONCURRENCY = 48
# Generous: the machine is small and shared; these bound a hang, they measure nothing.
SETTLE_S = 90.0
HANDOVER_S = 60.0


def short_target(site: str) -> str:
    return f"+1{SITES[site]}5550100"


def long_target(site: str) -> str:
    return f"+1{SITES[site]}5550200"


def sites_toml() -> str:
    parts = []
    for site, area in SITES.items():
        short = [f'"+1{area}55510{i:02d}"' for i in range(40)]
        long = [f'"+1{area}55520{i:02d}"' for i in range(20)]
        parts.append(
            f"""
[[sites]]
key = "{site}"
destination = "PJSIP/agent-{site}"
[[sites.pools]]
target = "{short_target(site)}"
numbers = [{", ".join(short)}]
overflow = "+1{area}5559998"
heartbeat_seconds = 1
grace_seconds = 3
probation_seconds = 3
cooldown_seconds = 0
[[sites.pools]]
target = "{long_target(site)}"
numbers = [{", ".join(long)}]
overflow = "+1{area}5559999"
when_exhausted = "overflow"
heartbeat_seconds = 1
grace_seconds = 600
probation_seconds = 600
cooldown_seconds = 0
[sites.limits]
client_per_minute = 0
client_live_numbers = 0
"""
        )
    return "".join(parts)


@dataclass
class Answer:
    """A session answered 201: where, when (before or after the kill) and what it was shown."""

    session_id: str
    site: str
    node: str
    after_kill: bool
    pool_numbers: dict[str, str]  # target -> number, pool offers only


@dataclass
class Call:
    site: str
    number: str
    session_id: str
    node: str
    after_kill: bool
    variables: dict[str, str]


@dataclass
class Load:
    """What the clients saw."""

    answers: list[Answer] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    statuses: Counter[tuple[str, bool, int]] = field(default_factory=Counter)  # (site, after, st)
    errors: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (node, after kill)
    heartbeats: Counter[tuple[bool, int]] = field(default_factory=Counter)
    witness_beats: Counter[int] = field(default_factory=Counter)  # status -> heartbeats
    killed: Gateway | None = None
    killed_at: float = 0.0
    served_again_at: dict[str, float] = field(default_factory=dict)  # victim's site -> time

    def answered(self, after_kill: bool) -> int:
        return sum(1 for a in self.answers if a.after_kill == after_kill)


@pytest.fixture
async def cluster_db(pg_cluster: PgCluster) -> AsyncIterator[str]:
    url = await migrated_database(pg_cluster)
    try:
        yield url
    finally:
        await drop_database(pg_cluster, url)


# --- the store ----------------------------------------------------------------------------


async def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# The lease of the dialed number whose life covers the call's time (the newest if two do), and
# the lease that was live when that one began, if any (a shared number, numberpool/slot.py): a
# call on a number one visit got alone is that visit's, `active`; a call from a new phone on a
# number its visit shares (or shared: the earlier holder may still call within the window) is
# that visit's, `probable` with the earlier holder as rival, who called from another phone
# (numberpool/claims.py).
CALLS_WITH_HOLDER = """
SELECT c.call_id, c.dialed, c.started_at, c.session_id, c.attribution_kind,
       NULLIF(c.attribution, '')::jsonb ->> 'other_session_id' AS other_session_id,
       h.session_id AS holder,
       (SELECT e.session_id FROM leases e
         WHERE e.pool_id = h.pool_id AND e.number = h.number AND e.lease_id != h.lease_id
           AND (e.started_at < h.started_at
                OR (e.started_at = h.started_at AND e.lease_id < h.lease_id))
           AND e.until > h.started_at AND e.started_at < e.until
         ORDER BY e.started_at DESC LIMIT 1) AS shared_with
FROM calls c LEFT JOIN LATERAL (
    SELECT l.* FROM leases l
    WHERE l.number = c.dialed AND l.started_at <= c.started_at AND c.started_at < l.until
    ORDER BY l.started_at DESC, l.lease_id DESC LIMIT 1
) AS h ON true
WHERE c.call_id = ANY($1::text[])
"""


# --- the clients ----------------------------------------------------------------------------


def pool_numbers(answer: dict[str, Any]) -> dict[str, str]:
    return {o["target"]: o["number"] for o in answer["numbers"] if o.get("kind") == "pool"}


def phone(n: int) -> str:
    """The `n`th caller's own phone: a valid number (an invalid one is stored as no caller id,
    and a call from no known phone never lets its visitor's number be shared)."""
    return f"+1202{2000000 + n:07d}"


async def call_number(node: Gateway, number: str, linkedid: str, caller: str) -> dict[str, str]:
    """A FastAGI call on `number` to `node`, as Asterisk speaks it; the variables set."""
    server = types.SimpleNamespace(port=node.agi_port)
    env = call_env(number, caller=caller, linkedid=linkedid)
    return routed(await fake_asterisk(server, env, timeout=15))  # type: ignore[arg-type]


class Clients:
    """Visitors opening sessions on every live gateway in turn; some heartbeat on another node,
    some call their number through another node."""

    def __init__(self, gateways: Gateways, http: aiohttp.ClientSession, load: Load) -> None:
        self.http = http
        self.load = load
        self.live = list(gateways.running())
        self.turn = itertools.count()
        self.callers = itertools.count(1)
        self.random = random.Random(15)

    def _other(self, node: Gateway) -> Gateway:
        others = [n for n in self.live if n is not node] or self.live
        return self.random.choice(others)

    async def visit(self) -> None:
        n = next(self.turn)
        node = self.live[n % len(self.live)]
        site = f"s{(n // len(self.live)) % len(SITES)}"
        began = time.monotonic()
        body = {"site": site, "url": f"https://{site}.example/p?gclid=G{n}&utm_source=ads"}
        try:
            async with self.http.post(f"{node.base}/v1/sessions", json=body) as resp:
                status = resp.status
                answer = await resp.json() if status == 201 else None
        except (aiohttp.ClientError, TimeoutError):
            self.load.errors[node.name, self.after] += 1
            return
        # Before or after the kill by when the answer came: one that came after may have been
        # cut by it.
        after = self.after
        self.load.statuses[site, after, status] += 1
        if answer is None:
            return
        numbers = pool_numbers(answer)
        self.load.answers.append(Answer(answer["session_id"], site, node.name, after, numbers))
        if self.load.killed_at and began > self.load.killed_at:
            self.load.served_again_at.setdefault(site, time.monotonic())
        if n % 5 == 0:
            await self.heartbeat(self._other(node), answer["session_id"])
        if n % 4 == 0 and numbers:
            target = self.random.choice(sorted(numbers))
            await self.call(self._other(node), site, numbers[target], answer["session_id"])

    @property
    def after(self) -> bool:
        return self.load.killed is not None

    async def heartbeat(self, node: Gateway, session_id: str) -> None:
        try:
            async with self.http.post(f"{node.base}/v1/sessions/{session_id}/heartbeat") as r:
                self.load.heartbeats[self.after, r.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.load.errors[node.name, self.after] += 1

    async def call(self, node: Gateway, site: str, number: str, session_id: str) -> None:
        n = next(self.callers)
        try:
            variables = await call_number(node, number, f"h3.{n}", phone(n))
        except (OSError, TimeoutError):
            self.load.errors[node.name, self.after] += 1
            return
        call = Call(site, number, session_id, node.name, self.after, variables)
        self.load.calls.append(call)

    async def run_until(self, done: Callable[[], bool]) -> None:
        async def worker() -> None:
            while not done():
                await self.visit()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


# --- the test -------------------------------------------------------------------------------


async def test_four_gateways_share_one_postgresql_and_survive_a_kill(
    tmp_path: Path, cluster_db: str
) -> None:
    url = cluster_db
    # A generous route deadline: on a busy machine a forwarded route may take longer than the
    # 300 ms default, and the dialplan's fallback is not what this test is about.
    gateways = Gateways(url, tmp_path, NODES, sites_toml(), cluster=True, agi_deadline_ms=5000)
    load = Load()
    try:
        await asyncio.to_thread(gateways.start)
        owner_of = await gateways.settled(list(SITES), SETTLE_S)
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
        async with aiohttp.ClientSession(
            headers=BROWSER, timeout=timeout, connector=connector
        ) as http:
            clients = Clients(gateways, http, load)
            began = time.monotonic()

            def before_done() -> bool:
                return load.answered(False) >= BEFORE_KILL and time.monotonic() - began > PHASE_S

            await clients.run_until(before_done)

            # kill -9 the owner of s0, mid-load: the clients keep going meanwhile.
            victim = next(n for n in gateways.nodes if n.name == owner_of["s0"])
            victim_sites = sorted(s for s, name in owner_of.items() if name == victim.name)

            def after_done() -> bool:
                if not load.killed_at:
                    return False
                since = time.monotonic() - load.killed_at
                served = set(victim_sites) <= set(load.served_again_at)
                enough = load.answered(True) >= AFTER_KILL and since > PHASE_S
                return (served and enough) or since > HANDOVER_S

            going = asyncio.create_task(clients.run_until(after_done))
            await asyncio.sleep(0.5)
            load.killed = victim
            await asyncio.to_thread(gateways.kill, victim)
            load.killed_at = time.monotonic()
            clients.live = gateways.running()
            await going

            # Leases answered before the kill are attributed after it, on the survivors.
            witnesses = [
                a
                for a in load.answers
                if not a.after_kill and long_target(a.site) in a.pool_numbers
            ]
            after_calls = await witness_calls(clients, witnesses, victim_sites)
    finally:
        codes = await asyncio.to_thread(gateways.close)

    report = summary(load, owner_of, victim_sites)
    assert victim.proc is not None and victim.proc.returncode == -9
    # Every check runs, and the test names every failed one: the run is too long to repeat
    # for each.
    problems = check_clients(load, codes, victim, victim_sites)
    problems += check_logs(gateways)
    problems += await check_store(url, load, after_calls)
    [counts] = await fetch(
        url,
        "SELECT count(*) AS leases, count(DISTINCT number) AS numbers,"
        " (SELECT count(*) FROM calls) AS calls FROM leases",
    )
    shares = len(await fetch(url, OVERLAPS))  # every overlap a share, or check_store said so
    print(f"{report}; store: {dict(counts)}, shares {shares}")  # shown with -s: what the run did
    assert not problems, "\n".join([*problems, report])


def check_clients(
    load: Load, codes: dict[str, int], victim: Gateway, victim_sites: list[str]
) -> list[str]:
    problems = []
    if any(codes.values()):
        problems.append(f"survivors did not stop cleanly: {codes}")
    # The others went on: sites the victim did not own never failed on a survivor, and the
    # victim's sites were served again within the (generous) hand-over bound.
    for (site, after, status), count in sorted(load.statuses.items()):
        if status == 201 or (after and site in victim_sites and status == 503):
            continue
        when = "after" if after else "before"
        problems.append(f"{count} sessions of {site} answered {status} {when} the kill")
    unserved = set(victim_sites) - set(load.served_again_at)
    if unserved:
        problems.append(f"{sorted(unserved)} not served again in {HANDOVER_S} s")
    if load.answered(True) < AFTER_KILL:
        problems.append(f"only {load.answered(True)} sessions answered after the kill")
    failed = {key: n for key, n in load.errors.items() if key[0] != victim.name}
    if failed:
        problems.append(f"requests to survivors failed (node, after kill): {failed}")
    beats = {
        key: n for key, n in load.heartbeats.items() if not key[0] and key[1] not in (200, 410)
    }
    if beats:
        problems.append(f"heartbeats before the kill answered (_, status): {beats}")
    # The live sessions of the victim's sites came over with them: their heartbeats hold.
    if set(load.witness_beats) != {200}:
        problems.append(f"witnesses' heartbeats after the kill answered {load.witness_beats}")
    return problems


def check_logs(gateways: Gateways) -> list[str]:
    """The daemons' logs are JSON events, one a line, to the end (no stray traceback)."""
    problems = []
    for node in gateways.nodes:
        stray = [line for line in node.log_text().splitlines() if not line.startswith("{")]
        if stray:
            problems.append(f"{node.name} logged {len(stray)} lines that are not JSON: {stray[:3]}")
    return problems


async def witness_calls(
    clients: Clients, witnesses: list[Answer], victim_sites: list[str]
) -> list[tuple[Answer, dict[str, str]]]:
    """Heartbeat every witness of the victim's sites and of some others, and call its
    long-pool number, through the survivors; a heartbeat or a call before the site is served
    again (503, or an empty route: the dialplan's fallback) is tried again."""
    chosen = [w for w in witnesses if w.site in victim_sites]
    chosen += [w for w in witnesses if w.site not in victim_sites][:40]
    assert len([w for w in chosen if w.site in victim_sites]) >= 10, len(chosen)
    done: list[tuple[Answer, dict[str, str]]] = []
    deadline = time.monotonic() + HANDOVER_S
    for n, witness in enumerate(chosen):
        node = clients.live[n % len(clients.live)]
        number = witness.pool_numbers[long_target(witness.site)]
        while True:
            beat = f"{node.base}/v1/sessions/{witness.session_id}/heartbeat"
            async with clients.http.post(beat) as resp:
                status = resp.status
            if status != 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        clients.load.witness_beats[status] += 1
        while True:
            caller = next(clients.callers)
            variables = await call_number(node, number, f"h3.w{caller}", phone(caller))
            if variables.get("CTGW_ROUTE") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        done.append((witness, variables))
    return done


def summary(load: Load, owner_of: dict[str, str], victim_sites: list[str]) -> str:
    handover = {
        site: round(at - load.killed_at, 2) for site, at in sorted(load.served_again_at.items())
    }
    return (
        f"owners {owner_of}; victim {load.killed.name if load.killed else None} "
        f"sites {victim_sites}; answered before {load.answered(False)} after "
        f"{load.answered(True)}; statuses {dict(load.statuses)}; errors {dict(load.errors)}; "
        f"heartbeats {dict(load.heartbeats)}; witnesses' heartbeats {dict(load.witness_beats)}; "
        f"calls {len(load.calls)}; "
        f"victim sites served again after (s) "
        f"{ {s: t for s, t in handover.items() if s in victim_sites} }"
    )


async def check_store(
    url: str, load: Load, after_calls: list[tuple[Answer, dict[str, str]]]
) -> list[str]:
    problems = []
    # 0 double leases, per pool: a number leased again while live only as a share (its holder
    # called on it from a known phone first), and never to three at once.
    doubles = await fetch(url, DOUBLE_LEASES)
    if doubles:
        problems.append(f"{len(doubles)} double leases: {[dict(r) for r in doubles[:5]]}")

    # Every answered session is stored, with the lease of each pool number it was shown.
    stored = {r["session_id"] for r in await fetch(url, "SELECT session_id FROM sessions")}
    missing = [a.session_id for a in load.answers if a.session_id not in stored]
    if missing:
        problems.append(f"{len(missing)} answered sessions not stored: {missing[:5]}")
    leases = await fetch(url, "SELECT session_id, number FROM leases")
    held = {(r["session_id"], r["number"]) for r in leases}
    lost = [
        (a.session_id, number)
        for a in load.answers
        for number in a.pool_numbers.values()
        if (a.session_id, number) not in held
    ]
    if lost:
        problems.append(f"{len(lost)} answered leases not stored: {lost[:5]}")

    # Every call before the kill was routed to its site's destination, and every routed call is
    # attributed to the visit whose lease covers its time, on whichever node it came in.
    wrong_route = [
        (c.site, c.node, c.variables)
        for c in load.calls
        if not c.after_kill and c.variables.get("CTGW_ROUTE") != f"PJSIP/agent-{c.site}"
    ]
    if wrong_route:
        problems.append(f"{len(wrong_route)} calls before the kill not routed: {wrong_route[:3]}")
    routed_calls = [
        c.variables["CTGW_CALL_ID"] for c in load.calls if c.variables.get("CTGW_ROUTE")
    ]
    rows = await fetch(url, CALLS_WITH_HOLDER, routed_calls)
    if len(rows) != len(routed_calls):
        problems.append(f"{len(routed_calls) - len(rows)} routed calls not stored")
    covered = [row for row in rows if row["holder"] is not None]
    # A call after its lease ended is probable or unattributed, by rules not checked here.
    misattributed = [dict(row) for row in covered if decided(row) != expected(row)]
    if misattributed:
        problems.append(f"{len(misattributed)} calls misattributed: {misattributed[:3]}")
    # Most calls come right after their session: a test that attributes nothing proves nothing.
    if not len(covered) >= len(rows) // 2 > 0:
        problems.append(f"only {len(covered)} of {len(rows)} calls within a lease")
    # The short pools run out all the time and a quarter of the visits call: numbers are shared,
    # and a check that saw no share would not show it tells one from a double lease.
    if not any(row["shared_with"] for row in covered) or not await fetch(url, OVERLAPS):
        problems.append("no number was shared (its holder called) while the short pools ran out")

    # Leases answered before the kill are attributed after it, on the survivors.
    unrouted = [(w.site, v) for w, v in after_calls if not v.get("CTGW_ROUTE")]
    if unrouted:
        problems.append(f"{len(unrouted)} witness calls not routed: {unrouted[:3]}")
    witness_rows = await fetch(
        url,
        "SELECT call_id, session_id, attribution_kind FROM calls WHERE call_id = ANY($1::text[])",
        [v["CTGW_CALL_ID"] for _, v in after_calls if v.get("CTGW_CALL_ID")],
    )
    found = {r["call_id"]: (r["attribution_kind"], r["session_id"]) for r in witness_rows}
    forgotten = [
        (w.site, w.session_id, found.get(v.get("CTGW_CALL_ID", "")))
        for w, v in after_calls
        if found.get(v.get("CTGW_CALL_ID", "")) != ("active", w.session_id)
    ]
    if forgotten:
        problems.append(
            f"{len(forgotten)} of {len(after_calls)} leases answered before the kill not"
            f" attributed after it (site, session, stored as): {forgotten[:5]}"
        )
    return problems


def decided(row: asyncpg.Record) -> tuple[str, str, str | None]:
    return (row["attribution_kind"], row["session_id"], row["other_session_id"])


def expected(row: asyncpg.Record) -> tuple[str, str, str | None]:
    """As one node decides a call from a new phone (each visit here calls once, from its own)."""
    if row["shared_with"] is None:
        return ("active", row["holder"], None)
    return ("probable", row["holder"], row["shared_with"])


async def test_the_overlap_check_finds_a_number_leased_twice_at_once(cluster_db: str) -> None:
    """The store check above would see a double lease: one that begins while another of its
    number is live is found; one that begins as the last ends, or in another pool, is not."""
    rows = [
        ("a1", "p1", "+14155550101", "2026-01-05T09:00:00.000000Z", "2026-01-05T09:00:03.000000Z"),
        ("a2", "p1", "+14155550101", "2026-01-05T09:00:03.000000Z", "2026-01-05T09:00:06.000000Z"),
        ("b1", "p2", "+14155550101", "2026-01-05T09:00:01.000000Z", "2026-01-05T09:00:02.000000Z"),
        ("a3", "p1", "+14155550101", "2026-01-05T09:00:05.000000Z", "2026-01-05T09:00:09.000000Z"),
    ]
    conn = await asyncpg.connect(cluster_db)
    try:
        await conn.executemany(
            "INSERT INTO leases (lease_id, pool_id, number, session_id, visitor_id, started_at,"
            " last_seen, until) VALUES ($1, $2, $3, $1, 'v', $4, $4, $5)",
            rows,
        )
    finally:
        await conn.close()
    assert [r["lease_id"] for r in await fetch(cluster_db, DOUBLE_LEASES)] == ["a3"]


async def test_the_overlap_check_accepts_a_share_and_nothing_more(cluster_db: str) -> None:
    """The store check above on PostgreSQL, as tests/api/test_sessions.py runs it on SQLite: a
    lease that began while another of its number was live is a double lease unless that one's
    visitor called on it from a known phone before, and never a third live lease."""
    conn = await asyncpg.connect(cluster_db)
    try:
        await conn.executemany(
            "INSERT INTO leases (lease_id, pool_id, number, session_id, visitor_id, started_at,"
            " last_seen, until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            LEASE_ROWS,
        )
        await conn.executemany(
            "INSERT INTO calls (call_id, site, dialed, caller, started_at, state, attribution_kind,"
            " session_id, visitor_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            CALL_ROWS,
        )
    finally:
        await conn.close()
    overlaps = {r["lease_id"] for r in await fetch(cluster_db, OVERLAPS)}
    doubled = {r["lease_id"] for r in await fetch(cluster_db, DOUBLE_LEASES)}
    assert sorted(doubled) == DOUBLED
    assert sorted(overlaps - doubled) == SHARED
