"""One gateway per PostgreSQL database, unless the gateways share it as a cluster.

A gateway holds its pools' leases in its own memory (numberpool.Pool): two gateways serving the
same site would lease the same number to two visitors. So a gateway without `[cluster]` holds
the database's serving lock exclusively, and a cluster's node holds it shared (each node then
serves only the sites it holds: gateway/cluster/). Whichever comes second, a lone gateway or a
node beside a lone one, refuses to start, saying why. Each lock sits on a connection of its
own: a gateway that stops or dies frees it at once.
"""

from __future__ import annotations

from typing import Any

from gateway.store.pg.database import PgDatabase
from gateway.store.store_types import StoreError

__all__ = ["SERVING_LOCK", "hold_cluster_share", "hold_single_gateway"]

# The advisory lock key of "a gateway serves this database" ('ctgw' and 1, as a bigint).
SERVING_LOCK = 0x6374677700000001


async def hold_single_gateway(db: PgDatabase) -> Any:
    """The connection holding this database's serving lock (close it to let go); StoreError
    when another gateway, or a cluster of them, serves the database."""
    return await _hold(
        db,
        "SELECT pg_try_advisory_lock($1)",
        f"store {db.where}: another gateway already serves this database; to run several on"
        " one PostgreSQL, give each a [cluster] peer_port (docs/postgresql.md)",
    )


async def hold_cluster_share(db: PgDatabase) -> Any:
    """The connection holding a share of the serving lock, for a node of a cluster; StoreError
    when a gateway without [cluster] serves the database."""
    return await _hold(
        db,
        "SELECT pg_try_advisory_lock_shared($1)",
        f"store {db.where}: a gateway without [cluster] serves this database; stop it, or give"
        " it the same [cluster] settings, before starting a cluster on it",
    )


async def _hold(db: PgDatabase, sql: str, refused: str) -> Any:
    conn = await db.own_connection()
    try:
        held = await conn.fetchval(sql, SERVING_LOCK)
    except BaseException:
        await conn.close()
        raise
    if not held:
        await conn.close()
        raise StoreError(refused)
    return conn
