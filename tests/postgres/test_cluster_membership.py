"""Cluster membership on a real PostgreSQL: nodes split the units fairly by advisory locks, a
unit is never held by two nodes (checked every few milliseconds and at each take), a node whose
lock connection dies loses every unit at once and its units go to the others, close() hands
units over, a failed take is retried, and a node that joins gets its share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.cluster.membership import Membership, Peer, site_unit
from gateway.cluster.nodes import KEEPALIVES, LOCK_CLASS, lock_key, set_keepalives
from gateway.store.pg.database import PgDatabase

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

UNITS = [site_unit(key) for key in ("a", "b", "c", "d", "e", "f")]
# Fast ticks; the liveness window kept wide, so a loaded machine does not make nodes look dead.
FAST: dict[str, Any] = {"tick_s": 0.05, "dead_after_s": 1.5, "pause_s": 0.3, "retry_after_s": 0.3}
DEADLINE_S = 20.0


class Watch:
    """Every node of a test; a task that checks, every 2 ms, that no unit is held twice."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.doubles: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def check(self, taking: Node | None = None, unit: str = "") -> None:
        for u in UNITS:
            holders = [n.name for n in self.nodes if n.membership.holds(u)]
            if len(holders) > 1:
                self.doubles.append(f"{u}: {holders}")
        if taking is not None:
            holders = [n.name for n in self.nodes if n is not taking and n.membership.holds(unit)]
            if holders:
                self.doubles.append(f"{unit} taken by {taking.name} while held by {holders}")

    async def _run(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(0.002)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Node:
    """A Membership with callbacks that record what they were told."""

    def __init__(self, watch: Watch, db: PgDatabase, name: str, **timing: Any) -> None:
        self.name = name
        self.watch = watch
        self.units = list(UNITS)
        self.taken: list[str] = []
        self.lost: list[str] = []
        self.held_at_loss: list[frozenset[str]] = []
        self.fail: dict[str, int] = {}  # unit -> how many takes still fail
        self.tries: dict[str, int] = {}
        self.fail_lost = False
        self.slow: dict[str, float] = {}  # unit -> seconds its reload takes
        self.loading = asyncio.Event()
        self.membership = Membership(
            db,
            Peer(name, "127.0.0.1", 7000 + len(watch.nodes)),
            lambda: self.units,
            on_taken=self.on_taken,
            on_lost=self.on_lost,
            **{**FAST, **timing},
        )
        watch.nodes.append(self)

    async def on_taken(self, unit: str) -> None:
        self.tries[unit] = self.tries.get(unit, 0) + 1
        self.watch.check(self, unit)
        assert not self.membership.holds(unit)
        self.loading.set()
        await asyncio.sleep(self.slow.get(unit, 0.01))  # a site's reload takes a moment
        if self.fail.get(unit, 0) != 0:
            self.fail[unit] -= 1
            raise RuntimeError(f"{unit}: the site cannot be loaded")
        self.taken.append(unit)

    async def on_lost(self, unit: str) -> None:
        assert not self.membership.holds(unit)
        self.held_at_loss.append(self.membership.held)
        await asyncio.sleep(0.01)  # a site's drain takes a moment
        self.lost.append(unit)
        if self.fail_lost:
            raise RuntimeError(f"{unit}: the drain failed")

    @property
    def held(self) -> frozenset[str]:
        return self.membership.held


@pytest.fixture
async def watch(pg_store: PgDatabase) -> AsyncIterator[Watch]:
    """The nodes of a test, closed at its end; fails the test if a unit was ever held twice."""
    del pg_store
    found = Watch()
    found.start()
    try:
        yield found
    finally:
        await found.stop()
        for node in found.nodes:
            await node.membership.close()
    assert found.doubles == []


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until `condition()` holds."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.01)


def split(nodes: list[Node], *sizes: int) -> Callable[[], bool]:
    """The nodes hold these numbers of units, all six units between them."""

    def holds() -> bool:
        held = [n.held for n in nodes]
        together = frozenset().union(*held)
        return [len(h) for h in held] == list(sizes) and together == frozenset(UNITS)

    return holds


async def test_two_nodes_split_six_units_three_each(watch: Watch, pg_store: PgDatabase) -> None:
    """Two nodes started one after the other end holding three units each, and stay so."""
    a, b = Node(watch, pg_store, "a"), Node(watch, pg_store, "b")
    await a.membership.start()
    await b.membership.start()
    await until(split([a, b], 3, 3), "3 + 3")
    await asyncio.sleep(0.5)  # ten ticks: nothing moves once fair
    assert split([a, b], 3, 3)()
    assert sorted(a.taken + b.taken) == sorted(UNITS + a.lost + b.lost)


async def test_three_nodes_split_six_units_two_each(watch: Watch, pg_store: PgDatabase) -> None:
    """Three nodes end holding two units each; each sees the others as owners of theirs."""
    nodes = [Node(watch, pg_store, name) for name in ("a", "b", "c")]
    await asyncio.gather(*(n.membership.start() for n in nodes))
    await until(split(nodes, 2, 2, 2), "2 + 2 + 2")
    a = nodes[0]

    def owners_known() -> bool:
        return all(a.membership.owner(u) == n.membership.me for n in nodes for u in n.held)

    deadline = time.monotonic() + DEADLINE_S
    while not owners_known():  # a unit's owner row is written just after its holder holds it
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
        await a.membership.refresh()


async def test_a_node_whose_lock_connection_dies_loses_every_unit_to_the_others(
    watch: Watch, pg_store: PgDatabase, pg_db: str
) -> None:
    """pg_terminate_backend on a node's lock connection (as kill -9 does): its holds() are all
    False before the first on_lost, the others serve its units within a few ticks, and once
    back it gets its share again."""
    a, b = Node(watch, pg_store, "a"), Node(watch, pg_store, "b")
    victim = Node(watch, pg_store, "victim", pause_s=3.0)
    for node in (a, b, victim):
        await node.membership.start()
    await until(split([a, b, victim], 2, 2, 2), "2 + 2 + 2")
    gone, before = victim.held, len(victim.lost)
    admin = await asyncpg.connect(pg_db)
    try:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::bigint::oid"
            " AND objid = $2::bigint::oid AND objsubid = 2",
            LOCK_CLASS,
            lock_key(min(gone)) & 0xFFFFFFFF,
        )
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await until(lambda: sorted(victim.lost[before:]) == sorted(gone), "its on_lost for each")
    assert victim.held_at_loss[before:] == [frozenset()] * len(gone)
    await until(lambda: all(u in a.held or u in b.held for u in gone), "taken over")
    await until(split([a, b, victim], 2, 2, 2), "the victim back with its share")


class FrozenLink:
    """A TCP relay to PostgreSQL that can freeze (a partition: nothing passes either way, not
    even a close, while both sockets stay open) and then cut its side to the server."""

    def __init__(self, url: str) -> None:
        self._target = urlsplit(url)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._upstream: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = self._target._replace(netloc=f"postgres@127.0.0.1:{port}").geturl()

    async def own_connection(self) -> Any:
        """The lock connection through the relay (what Membership asks its store for)."""
        return await asyncpg.connect(self.url, timeout=5)

    @property
    def where(self) -> str:
        return self.url

    def freeze(self) -> None:
        self._flowing.clear()

    def cut(self) -> None:
        """The server sees its connections close (as its keepalives would find)."""
        for writer in self._upstream:
            writer.transport.abort()
        self._flowing.set()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self._target.hostname, self._target.port
        up_reader, up_writer = await asyncio.open_connection(host, port)
        self._upstream.append(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
            await self._flowing.wait()
        finally:
            writer.transport.abort()


async def test_a_node_cut_off_from_postgresql_stops_serving_before_its_locks_are_freed(
    watch: Watch, pg_store: PgDatabase, pg_db: str
) -> None:
    """A partition (the lock connection silent, its sockets still open): the node stops serving
    every unit within its lost_after_s while the server still holds its locks, so no other node
    can take them yet; when the server drops the connection, the others take them."""
    link = FrozenLink(pg_db)
    await link.start()
    try:
        a, b = Node(watch, pg_store, "a"), Node(watch, pg_store, "b")
        cut_off = Node(watch, link, "cut_off", lost_after_s=2.0, pause_s=60.0)  # type: ignore[arg-type]
        for node in (a, b, cut_off):
            await node.membership.start()
        await until(split([a, b, cut_off], 2, 2, 2), "2 + 2 + 2")
        gone, before = cut_off.held, len(cut_off.lost)
        link.freeze()
        await until(lambda: cut_off.held == frozenset(), "the cut-off node stops serving")
        await until(lambda: sorted(cut_off.lost[before:]) == sorted(gone), "on_lost for each")
        assert cut_off.held_at_loss[before:] == [frozenset()] * len(gone)
        await asyncio.sleep(0.5)  # ten ticks: its locks are still the server's truth
        assert not any(u in a.held or u in b.held for u in gone)
        link.cut()
        await until(lambda: all(u in a.held or u in b.held for u in gone), "taken over")
    finally:
        await link.close()


async def test_close_hands_every_unit_over(watch: Watch, pg_store: PgDatabase) -> None:
    """A node that closes drains each of its units (on_lost), its peer takes them all, and the
    node's row leaves the directory."""
    a, b = Node(watch, pg_store, "a"), Node(watch, pg_store, "b")
    await a.membership.start()
    await b.membership.start()
    await until(split([a, b], 3, 3), "3 + 3")
    mine, before = a.held, len(a.lost)
    await a.membership.close()
    assert a.held == frozenset()
    assert sorted(a.lost[before:]) == sorted(mine)
    await until(split([b], 6), "b holds all six")
    rows = await pg_store.fetchall("SELECT node_id FROM cluster.nodes")
    assert [row["node_id"] for row in rows] == ["b"]
    await b.membership.refresh()
    assert all(b.membership.owner(u) == b.membership.me for u in UNITS)


async def test_a_failed_take_is_not_held_and_is_retried(watch: Watch, pg_store: PgDatabase) -> None:
    """on_taken raising twice for a unit: it is not held meanwhile, then taken on a later try."""
    a = Node(watch, pg_store, "a")
    a.fail["site:c"] = 2
    await a.membership.start()
    assert a.tries["site:c"] == 1
    assert not a.membership.holds("site:c")
    await until(split([a], 6), "all six, site:c on a later try")
    assert a.tries["site:c"] == 3
    assert "site:c" not in a.lost


async def test_a_unit_one_node_cannot_load_goes_to_another(
    watch: Watch, pg_store: PgDatabase
) -> None:
    """A unit whose on_taken always fails on one node is served by the other."""
    a, b = Node(watch, pg_store, "a"), Node(watch, pg_store, "b")
    a.fail["site:a"] = -1
    await a.membership.start()
    await b.membership.start()
    await until(lambda: b.membership.holds("site:a"), "b serves site:a")
    await until(lambda: frozenset().union(a.held, b.held) == frozenset(UNITS), "all served")


async def test_a_joining_node_gets_its_share_by_let_go(watch: Watch, pg_store: PgDatabase) -> None:
    """One node holds all six; a second joins and receives three, each drained first."""
    a = Node(watch, pg_store, "a")
    await a.membership.start()
    assert a.held == frozenset(UNITS)
    b = Node(watch, pg_store, "b")
    await b.membership.start()
    await until(split([a, b], 3, 3), "3 + 3")
    assert b.held <= set(a.lost)  # each drained on a first (a loaded machine may bounce one)
    assert b.held <= set(b.taken)


async def test_a_failing_drain_still_hands_the_unit_over(
    watch: Watch, pg_store: PgDatabase
) -> None:
    """on_lost raising is logged: the unit is let go all the same and the loop goes on."""
    a = Node(watch, pg_store, "a")
    a.fail_lost = True
    await a.membership.start()
    b = Node(watch, pg_store, "b")
    await b.membership.start()
    await until(split([a, b], 3, 3), "3 + 3")
    assert len(a.lost) == 3


async def test_a_loss_during_a_slow_reload_unloads_that_unit_too(
    watch: Watch, pg_store: PgDatabase, pg_db: str
) -> None:
    """The lock connection killed while a unit loads: it is never held, on_lost follows its
    load, and after the pause the node takes every unit again."""
    a = Node(watch, pg_store, "a")
    a.slow["site:a"] = 1.0
    starting = asyncio.get_running_loop().create_task(a.membership.start())
    await asyncio.wait_for(a.loading.wait(), DEADLINE_S)
    admin = await asyncpg.connect(pg_db)
    try:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::bigint::oid"
            " AND objid = $2::bigint::oid AND objsubid = 2",
            LOCK_CLASS,
            lock_key("site:a") & 0xFFFFFFFF,
        )
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.wait_for(starting, DEADLINE_S)
    await until(lambda: a.lost == ["site:a"], "on_lost after the load")
    assert a.held_at_loss == [frozenset()]
    a.slow.clear()
    await until(split([a], 6), "all six again")


async def test_a_unit_gone_from_the_list_is_let_go(watch: Watch, pg_store: PgDatabase) -> None:
    """A site removed from the units is drained and let go."""
    a = Node(watch, pg_store, "a")
    await a.membership.start()
    a.units.remove("site:f")
    await until(lambda: a.lost == ["site:f"], "site:f let go")
    assert a.held == frozenset(UNITS) - {"site:f"}


async def test_the_lock_connection_asks_the_server_for_keepalives(pg_store: PgDatabase) -> None:
    """Over TCP the server takes the keepalive settings on the lock connection."""
    conn = await pg_store.own_connection()
    try:
        found = await set_keepalives(conn)
        for name, value in KEEPALIVES:
            assert found[name] == value
            assert await conn.fetchval(f"SHOW {name}") in (value, value + "ms")
    finally:
        await conn.close()
