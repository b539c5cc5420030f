"""One gateway per PostgreSQL database, until leases are taken through the database.

Each gateway still holds its pools' leases in its own memory (numberpool.Pool): two gateways on
one database would lease the same number to two visitors. So a serving gateway holds a
session-level advisory lock (per database in PostgreSQL) on a connection of its own, and a
second one refuses to start, saying why. The lock goes with that connection: a gateway that
stops or dies frees it at once.
"""

from __future__ import annotations

from typing import Any

from gateway.store.pg.database import PgDatabase
from gateway.store.store_types import StoreError

__all__ = ["SERVING_LOCK", "hold_single_gateway"]

# The advisory lock key of "a gateway serves this database" ('ctgw' and 1, as a bigint).
SERVING_LOCK = 0x6374677700000001


async def hold_single_gateway(db: PgDatabase) -> Any:
    """The connection holding this database's serving lock (close it to let go); StoreError
    when another gateway holds it."""
    conn = await db.own_connection()
    try:
        held = await conn.fetchval("SELECT pg_try_advisory_lock($1)", SERVING_LOCK)
    except BaseException:
        await conn.close()
        raise
    if not held:
        await conn.close()
        raise StoreError(
            f"store {db.where}: another gateway already serves this database; several"
            " gateways on one PostgreSQL are not supported yet (docs/postgresql.md)"
        )
    return conn
