"""One gateway's start, as far as the store goes: `python -m tests.postgres.open_store URL`
opens the PostgreSQL store (migrating it) and prints the migrations it applied as JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from gateway.store.pg.database import PgDatabase

__all__ = ["main"]


async def _open(url: str) -> list[str]:
    db = await PgDatabase.open(url, migrate=False)
    try:
        return await db.migrate()
    finally:
        await db.close()


def main() -> None:
    print(json.dumps(asyncio.run(_open(sys.argv[1]))))


if __name__ == "__main__":
    main()
