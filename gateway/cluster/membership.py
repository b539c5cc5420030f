"""Which units (sites) this node serves: those whose advisory lock it holds on its own
connection (the lock connection). A tick (0.5 s) touches the node's row, reads the directory and
the locks, and takes or lets go of units by the share rules (ownership.py).

The lock connection lost (closed, a statement failing or late), every unit stops being held at
once, `on_lost` is called for each, and the node reconnects after a pause. `holds()` is also
False once no round trip has been confirmed for `lost_after_s`: the server frees a vanished
node's locks only later (nodes.KEEPALIVES), so two nodes never serve one unit at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from gateway.cluster import nodes
from gateway.cluster.nodes import Directory, Peer, lock_key, valid_peer
from gateway.cluster.ownership import plan_tick
from gateway.cluster.unit_calls import UnitCallback, call_for_unit, call_while_checking
from gateway.store.pg.database import PgDatabase
from gateway.store.store_types import StoreError
from gateway.tasks import cancel_and_wait

__all__ = ["Membership", "Peer", "site_unit", "unit_site"]

log = structlog.get_logger()

_SITE = "site:"
# How long close() lets a tick in hand (a reload, a drain) finish before it cancels it.
_STOP_S = 10.0


def site_unit(site_key: str) -> str:
    """The unit of a site: all its pools, sessions and calls' attribution."""
    return _SITE + site_key


def unit_site(unit: str) -> str | None:
    """The site key of a site's unit (None: not a site's unit, such as "leader")."""
    return unit[len(_SITE) :] if unit.startswith(_SITE) else None


class Membership:
    """This node's membership of the cluster: the units it holds, and who holds the others."""

    def __init__(
        self,
        db: PgDatabase,
        me: Peer,
        units: Callable[[], Iterable[str]],
        *,
        on_taken: UnitCallback,
        on_lost: UnitCallback,
        tick_s: float = 0.5,
        dead_after_s: float = 3.0,
        lost_after_s: float = 5.0,
        pause_s: float = 1.0,
        retry_after_s: float = 5.0,
        grace_ticks: int = 2,
    ) -> None:
        if not valid_peer(me.node_id, me.host, me.port):
            raise ValueError(f"cluster node {me!r}: the id and host must be short text, 1-65535")
        self.me = me
        self._db = db
        self._units = units
        self._on_taken = on_taken
        self._on_lost = on_lost
        self._tick_s = tick_s
        self._dead_after_s = dead_after_s
        self._lost_after_s = lost_after_s
        self._pause_s = pause_s
        self._retry_after_s = retry_after_s
        self._grace_ticks = grace_ticks
        self._conn: Any = None
        self._talk = asyncio.Lock()  # one statement at a time on the lock connection
        self._held: set[str] = set()
        self._dropped: list[str] = []  # let go by a loss: on_lost still to call
        self._broken = False
        self._closed = False
        self._confirmed = float("-inf")  # when the last answered round trip was sent
        self._directory = Directory(nodes={}, live=frozenset(), owners={})
        self._known_units: set[str] = set()
        self._free_ticks: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fresh = True

    def holds(self, unit: str) -> bool:
        """Whether this node serves `unit` now."""
        return unit in self._held and self._confirmed_lately()

    @property
    def held(self) -> frozenset[str]:
        """The units this node serves now."""
        return frozenset(self._held) if self._confirmed_lately() else frozenset()

    def owner(self, unit: str) -> Peer | None:
        """Who serves `unit`: this node, a live peer (as the directory said), or None."""
        if self.holds(unit):
            return self.me
        node_id = self._directory.owners.get(unit)
        if node_id is None or node_id == self.me.node_id or node_id not in self._directory.live:
            return None
        return self._directory.nodes.get(node_id)

    async def refresh(self) -> None:
        """Read the directory again now (a peer said "not here"); a failure keeps the old one."""
        if self._conn is None or self._broken:
            return
        try:
            self._directory, _ = await self._query(
                nodes.look_up, self.me.node_id, self._dead_after_s
            )
        except Exception as exc:  # the tick finds out and recovers; the asker gets the old map
            log.warning("cluster_refresh_failed", error=repr(exc))

    async def start(self) -> None:
        """Connect, register this node, run the first tick, then tick in a task. Raises (a
        StoreError) when the lock connection cannot be opened."""
        if self._task is not None or self._closed:
            raise RuntimeError("cluster membership already started")
        try:
            await self._connect()
        except Exception as exc:
            raise StoreError(f"store {self._db.where}: cannot join the cluster: {exc}") from exc
        await self._step()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster")

    async def close(self) -> None:
        """Let go of every unit (on_lost each, then its lock), remove this node's row, close."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        task = self._task
        try:
            if task is not None:
                # The tick in hand (a site's reload or drain) ends first, unless it hangs.
                await asyncio.wait({task}, timeout=_STOP_S)
                await cancel_and_wait(task)
            await self._hand_over()
        finally:
            if task is not None and not task.done():
                task.cancel()  # close() itself cancelled: the loop must not reconnect
            conn, self._conn = self._conn, None
            self._held.clear()
            if conn is not None:
                conn.terminate()  # its locks go with it

    async def _run(self) -> None:
        while not self._closed:
            if self._broken:
                self._wake.clear()  # set by the loss itself: the pause is still owed
                await self._after_loss()
                await self._sleep(self._pause_s)
                continue
            if self._conn is None:
                try:
                    await self._connect()
                except Exception as exc:
                    log.warning("cluster_connect_failed", node=self.me.node_id, error=repr(exc))
                    await self._sleep(self._pause_s)
                continue
            await self._step()
            if not self._broken:
                await self._sleep(self._tick_s)

    async def _step(self) -> None:
        try:
            await self._tick()
        except Exception as exc:  # the lock connection's statement failed or was late
            self._lose(exc)

    async def _sleep(self, seconds: float) -> None:
        if self._closed:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _tick(self) -> None:
        units = self._unit_names()
        self._directory, elsewhere = await self._query(
            nodes.survey, self.me, frozenset(self._held), self._dead_after_s
        )
        now = time.monotonic()
        self._retry_at = {u: at for u, at in self._retry_at.items() if at > now}
        not_free = self._held | set(self._retry_at)  # a failed take waits a while
        free = [u for u in units if u not in not_free and lock_key(u) not in elsewhere]
        self._free_ticks = {u: self._free_ticks.get(u, 0) + 1 for u in free}
        live = self._directory.live
        counts = Counter(
            node for unit, node in self._directory.owners.items() if unit in units and node in live
        )
        plan = plan_tick(
            me=self.me.node_id,
            units=units,
            live=live,
            held=self._held,
            counts=counts,
            free_ticks=self._free_ticks,
            grace_ticks=self._grace_ticks,
        )
        for unit in plan.let_go:
            if self._broken or self._closed:
                return
            await self._let_go(unit)
        for unit in plan.take:
            if self._broken or self._closed:
                return
            await self._take(unit)

    def _unit_names(self) -> set[str]:
        try:
            found = {u for u in self._units() if isinstance(u, str) and u}
        except Exception:
            log.exception("cluster_units_failed", node=self.me.node_id)
            return set(self._known_units)
        self._known_units = found
        return found

    async def _take(self, unit: str) -> None:
        if not await self._query(nodes.try_lock, unit):
            self._free_ticks.pop(unit, None)  # another node was quicker
            return
        log.info("cluster_unit_taking", node=self.me.node_id, unit=unit)
        taken = await self._guarded(self._on_taken, unit)
        if self._broken:
            if taken:
                self._dropped.append(unit)  # loaded: it must be unloaded
            return
        if not taken:
            self._retry_at[unit] = time.monotonic() + self._retry_after_s
            await self._query(nodes.unlock, unit)
            return
        self._held.add(unit)
        self._free_ticks.pop(unit, None)
        await self._query(nodes.set_owner, unit, self.me.node_id)
        log.info("cluster_unit_taken", node=self.me.node_id, unit=unit)

    async def _let_go(self, unit: str) -> None:
        self._held.discard(unit)  # nothing new for it from now on, while on_lost drains it
        log.info("cluster_unit_letting_go", node=self.me.node_id, unit=unit)
        await self._guarded(self._on_lost, unit)
        if not self._broken:
            await self._query(nodes.release, unit, self.me.node_id)
            # Left to a poorer node: not taken back here before 3x the grace (a slow reload
            # there must not make the site bounce back and forth).
            self._free_ticks[unit] = -2 * self._grace_ticks

    def _drop_all(self) -> None:
        """Stop holding every unit at once (no await): the lock connection is gone."""
        self._dropped.extend(sorted(self._held))
        self._held.clear()
        self._broken = True
        self._wake.set()

    async def _after_loss(self) -> None:
        conn, self._conn = self._conn, None
        self._free_ticks.clear()
        while self._dropped:
            await self._call(self._on_lost, self._dropped.pop(0))
        if conn is not None:
            conn.terminate()  # after the drains: a connection still alive keeps the locks till now
        self._broken = False
        log.info("cluster_reconnecting", node=self.me.node_id, after_s=self._pause_s)

    async def _hand_over(self) -> None:
        dropped, self._dropped = self._dropped, []
        held = sorted(self._held)
        self._held.clear()
        usable = self._conn is not None and not self._broken
        for unit in [*dropped, *held]:
            await self._call(self._on_lost, unit)
            if usable and unit in held:
                try:
                    await self._query(nodes.release, unit, self.me.node_id)
                except Exception as exc:  # closing the connection frees the locks anyway
                    log.warning("cluster_release_failed", unit=unit, error=repr(exc))
                    usable = False
        if usable:
            with contextlib.suppress(Exception):
                await self._query(nodes.forget_node, self.me.node_id)
        log.info("cluster_left", node=self.me.node_id, units=len(dropped) + len(held))

    async def _check(self) -> None:
        """While a callback runs: touch this node's row; a failure is a loss."""
        if not self._broken:
            try:
                await self._query(nodes.touch, self.me)
            except Exception as exc:
                self._lose(exc)

    def _lose(self, exc: BaseException) -> None:
        log.warning("cluster_connection_lost", node=self.me.node_id, error=repr(exc))
        self._drop_all()

    def _guarded(self, callback: UnitCallback, unit: str) -> Awaitable[bool]:
        return call_while_checking(
            callback, unit, node=self.me.node_id, every_s=self._tick_s, check=self._check
        )

    def _call(self, callback: UnitCallback, unit: str) -> Awaitable[bool]:
        return call_for_unit(callback, unit, node=self.me.node_id)

    # The lock connection.

    async def _connect(self) -> None:
        started = time.monotonic()
        conn = await self._db.own_connection()
        try:
            async with asyncio.timeout(self._lost_after_s):
                keepalives = await nodes.set_keepalives(conn)
                await nodes.register_node(conn, self.me, fresh=self._fresh)
        except BaseException:
            conn.terminate()
            raise
        self._fresh = False
        self._confirmed = started
        self._conn = conn
        conn.add_termination_listener(self._connection_closed)
        pid = conn.get_server_pid()
        log.info("cluster_connected", node=self.me.node_id, pid=pid, keepalives=keepalives)

    def _connection_closed(self, conn: Any) -> None:
        if conn is self._conn and not self._closed:
            log.warning("cluster_connection_closed", node=self.me.node_id)
            self._drop_all()

    def _confirmed_lately(self) -> bool:
        return time.monotonic() - self._confirmed < self._lost_after_s

    async def _query(self, step: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """One step on the lock connection, bounded (a late answer counts as a loss)."""
        conn = self._conn
        if conn is None:
            raise ConnectionError("no lock connection")
        sent = time.monotonic()
        async with asyncio.timeout(self._lost_after_s / 2), self._talk:
            result = await step(conn, *args)
        if conn is self._conn:
            self._confirmed = max(self._confirmed, sent)
        return result
