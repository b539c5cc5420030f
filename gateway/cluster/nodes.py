"""The cluster's directory and locks in SQL (migration 1002_cluster.sql), on one asyncpg
connection: a node's row, the live nodes, who owns which unit, and a unit's advisory lock.

The lock is the truth of who serves a unit; the directory only says where to reach its holder.
A unit's lock is the two-int form (classid 0x6374 'ct', objid the signed crc32 of its name), so
it never meets the single-gateway or migration locks (one bigint key each)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOCK_CLASS",
    "Directory",
    "Peer",
    "clear_owner",
    "forget_node",
    "forget_silent",
    "lock_key",
    "locked_elsewhere",
    "look_up",
    "read_directory",
    "register_node",
    "release",
    "set_keepalives",
    "set_owner",
    "survey",
    "touch",
    "try_lock",
    "unlock",
    "valid_peer",
]

LOCK_CLASS = 0x6374  # 'ct'
# What the server does with a lock connection gone quiet (a vanished host): probe after 5 s of
# silence, every 2 s, give up after 3 probes; unacknowledged data gives up after 12 s. So the
# server frees a vanished node's locks about 11-12 s after its last packet, well after the node
# itself stops serving (Membership's lost_after_s, 5 s). Ignored on a Unix socket.
KEEPALIVES = (
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "12000"),  # ms; PostgreSQL 12 on
)
_MAX_TEXT = 255


@dataclass(frozen=True)
class Peer:
    """A gateway of the cluster: its id and where its peers reach it."""

    node_id: str
    host: str
    port: int


@dataclass(frozen=True)
class Directory:
    """The directory as read: every valid node row (live or not) and each unit's owner."""

    nodes: dict[str, Peer]
    live: frozenset[str]
    owners: dict[str, str]


def lock_key(unit: str) -> int:
    """The objid of a unit's advisory lock: the crc32 of its name as a signed 32-bit int."""
    value = zlib.crc32(unit.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


async def set_keepalives(conn: Any) -> dict[str, str]:
    """Ask the server to probe this connection (it frees a vanished node's locks); returns the
    settings as the server now has them (a Unix socket's are '0'; one it lacks is left out)."""
    found: dict[str, str] = {}
    for name, value in KEEPALIVES:
        # Session settings any user may change; an older server without one refuses it alone.
        known = await conn.fetchval("SELECT count(*) FROM pg_settings WHERE name = $1", name)
        if known:
            found[name] = str(await conn.fetchval("SELECT set_config($1, $2, false)", name, value))
    return found


_REGISTER = (
    "INSERT INTO cluster.nodes (node_id, peer_host, peer_port, started_at, seen_at)"
    " VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp())"
    " ON CONFLICT (node_id) DO UPDATE SET peer_host = EXCLUDED.peer_host,"
    " peer_port = EXCLUDED.peer_port, seen_at = EXCLUDED.seen_at"
)
# A node that has just started: its start time too (a reconnect keeps the first).
_REGISTER_FRESH = _REGISTER + ", started_at = EXCLUDED.started_at"


async def register_node(conn: Any, me: Peer, *, fresh: bool) -> None:
    """Write (or rewrite) this node's row; `fresh`: the node has just started."""
    await conn.execute(_REGISTER_FRESH if fresh else _REGISTER, me.node_id, me.host, me.port)


async def forget_node(conn: Any, node_id: str) -> None:
    """Remove a node's row and the owner rows naming it (a node that stops)."""
    await conn.execute("DELETE FROM cluster.owners WHERE node_id = $1", node_id)
    await conn.execute("DELETE FROM cluster.nodes WHERE node_id = $1", node_id)


async def forget_silent(conn: Any, after_s: float) -> None:
    """Remove the nodes silent for `after_s` seconds and the owner rows naming them."""
    await conn.execute(
        "WITH gone AS (DELETE FROM cluster.nodes"
        " WHERE seen_at < clock_timestamp() - make_interval(secs => $1) RETURNING node_id)"
        " DELETE FROM cluster.owners WHERE node_id IN (SELECT node_id FROM gone)",
        float(after_s),
    )


async def read_directory(conn: Any, dead_after_s: float) -> Directory:
    """The nodes (live: seen within `dead_after_s` by the server's clock) and the owners. Rows
    another node wrote are checked: one with a bad address is left out."""
    rows = await conn.fetch(
        "SELECT node_id, peer_host, peer_port,"
        " seen_at >= clock_timestamp() - make_interval(secs => $1) AS live FROM cluster.nodes",
        float(dead_after_s),
    )
    nodes: dict[str, Peer] = {}
    live: set[str] = set()
    for row in rows:
        node_id, host, port = row["node_id"], row["peer_host"], row["peer_port"]
        if not valid_peer(node_id, host, port):
            continue
        nodes[node_id] = Peer(node_id, host, port)
        if row["live"]:
            live.add(node_id)
    owners = {
        row["unit"]: row["node_id"]
        for row in await conn.fetch("SELECT unit, node_id FROM cluster.owners")
    }
    return Directory(nodes=nodes, live=frozenset(live), owners=owners)


def valid_peer(node_id: object, host: object, port: object) -> bool:
    """Whether a node's id and address can be used: short non-blank text, a TCP port."""
    texts = (node_id, host)
    if not all(isinstance(t, str) and t.strip() and len(t) <= _MAX_TEXT for t in texts):
        return False
    return isinstance(port, int) and 0 < port < 65536


async def locked_elsewhere(conn: Any) -> set[int]:
    """The unit lock keys (objids) held by other connections to this database."""
    rows = await conn.fetch(
        "SELECT objid::bigint AS objid FROM pg_locks WHERE locktype = 'advisory'"
        " AND classid = $1::bigint::oid AND objsubid = 2 AND granted"
        " AND pid <> pg_backend_pid()"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        LOCK_CLASS,
    )
    return {_signed(int(row["objid"])) for row in rows}


async def try_lock(conn: Any, unit: str) -> bool:
    """Take the unit's lock on this connection if nobody holds it."""
    return bool(
        await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, lock_key(unit))
    )


async def unlock(conn: Any, unit: str) -> bool:
    """Let go of the unit's lock (False: this connection did not hold it)."""
    return bool(
        await conn.fetchval("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, lock_key(unit))
    )


async def set_owner(conn: Any, unit: str, node_id: str) -> None:
    """Say in the directory that `node_id` holds `unit`."""
    await conn.execute(
        "INSERT INTO cluster.owners (unit, node_id, since) VALUES ($1, $2, clock_timestamp())"
        " ON CONFLICT (unit) DO UPDATE SET node_id = EXCLUDED.node_id, since = EXCLUDED.since",
        unit,
        node_id,
    )


async def clear_owner(conn: Any, unit: str, node_id: str) -> None:
    """Remove the unit's owner row if it still names `node_id` (a newer owner's row stays)."""
    await conn.execute("DELETE FROM cluster.owners WHERE unit = $1 AND node_id = $2", unit, node_id)


def _signed(objid: int) -> int:
    return objid - (1 << 32) if objid >= 1 << 31 else objid


async def survey(
    conn: Any, me: Peer, held: frozenset[str], dead_after_s: float
) -> tuple[Directory, set[int]]:
    """A tick's look: touch this node's row, forget nodes silent for 20 x `dead_after_s`, set
    right the owner rows naming this node, then what `look_up` returns."""
    await register_node(conn, me, fresh=False)
    await forget_silent(conn, 20 * dead_after_s)
    found = await read_directory(conn, dead_after_s)
    for unit, node in found.owners.items():
        if node == me.node_id and unit not in held:
            await clear_owner(conn, unit, me.node_id)
    for unit in held:
        if found.owners.get(unit) != me.node_id:
            await set_owner(conn, unit, me.node_id)
    elsewhere = await locked_elsewhere(conn)
    return _peers_only(found, elsewhere, me.node_id), elsewhere


async def look_up(conn: Any, me_id: str, dead_after_s: float) -> tuple[Directory, set[int]]:
    """The directory, with the owner rows of the units other nodes lock (a row left by a node
    that let go or died names no owner), and the unit lock keys held elsewhere."""
    found = await read_directory(conn, dead_after_s)
    elsewhere = await locked_elsewhere(conn)
    return _peers_only(found, elsewhere, me_id), elsewhere


def _peers_only(found: Directory, elsewhere: set[int], me_id: str) -> Directory:
    owners = {
        unit: node
        for unit, node in found.owners.items()
        if node != me_id and lock_key(unit) in elsewhere
    }
    return Directory(found.nodes, found.live, owners)


async def release(conn: Any, unit: str, node_id: str) -> None:
    """Let go of a unit's lock, then of its owner row."""
    await unlock(conn, unit)
    await clear_owner(conn, unit, node_id)


async def touch(conn: Any, me: Peer) -> None:
    """A round trip that also keeps this node live in the directory (while a tick is busy)."""
    await register_node(conn, me, fresh=False)
