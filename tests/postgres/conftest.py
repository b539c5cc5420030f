"""Fixtures for the PostgreSQL tests: one private cluster a test session (tests/lab/postgres.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.store.database import Database, Write
from gateway.store.pg.database import PgDatabase
from gateway.store.pg.migrate import apply_migrations
from tests.lab.postgres import PgCluster, pg_bin_dir, private_cluster

STAMP = "2026-01-05T09:00:00.000000Z"


def _missing(reason: str) -> None:
    """Skip outside CI; under CI=true a missing real part is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: real parts may not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL started once per test session, stopped and removed at its end."""
    if pg_bin_dir() is None:
        _missing("PostgreSQL is not installed: run tests/lab/setup.sh as root")
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres(pg_cluster: PgCluster) -> str:
    """The `postgresql://` URL of the session's private cluster."""
    return pg_cluster.url


async def empty_database(cluster: PgCluster) -> str:
    """A new database of `cluster`, without a schema; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(cluster.url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"


async def migrated_database(cluster: PgCluster) -> str:
    """A new database of `cluster` with the store's schema; its URL."""
    url = await empty_database(cluster)
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return url


async def drop_database(cluster: PgCluster, url: str) -> None:
    admin = await asyncpg.connect(cluster.url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def pg_db(pg_cluster: PgCluster) -> AsyncIterator[str]:
    """A fresh database of the session's cluster with the store's schema; dropped after."""
    url = await migrated_database(pg_cluster)
    try:
        yield url
    finally:
        await drop_database(pg_cluster, url)


@pytest.fixture
async def pg_store(pg_db: str) -> AsyncIterator[PgDatabase]:
    """The store on a fresh migrated database (`PgDatabase`), closed after the test."""
    db = await PgDatabase.open(pg_db)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The store on each backend (SQLite is the reference), with the site `demo` and its pool
    `demo:main`."""
    db: Database | PgDatabase
    cluster: PgCluster | None = None
    if request.param == "sqlite":
        db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    else:
        cluster = request.getfixturevalue("pg_cluster")  # a sync fixture: skips without one
        url = await migrated_database(cluster)
        db = await PgDatabase.open(url)
    try:
        await db.write(
            [
                Write(
                    "INSERT INTO sites (key, name, created_at) VALUES (?, ?, ?)",
                    ("demo", "Demo", STAMP),
                    rank=10,
                ),
                Write(
                    "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, ?, ?, ?)",
                    ("demo:main", "demo", "+14155550100", STAMP),
                    rank=20,
                ),
            ]
        )
        yield db
    finally:
        await db.close()
        if cluster is not None:
            await drop_database(cluster, url)
