"""The lab's private PostgreSQL answers on its own port, as a non-root server."""

from __future__ import annotations

import os
import pwd
import socket

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.lab.postgres import PgCluster, private_cluster

pytestmark = pytest.mark.postgres


async def test_the_private_cluster_answers_on_its_own_port(pg_cluster: PgCluster) -> None:
    conn = await asyncpg.connect(pg_cluster.url)
    try:
        assert await conn.fetchval("SELECT current_setting('port')") == str(pg_cluster.port)
        assert await conn.fetchval("SELECT current_user") == "postgres"
        assert await conn.fetchval("SELECT pg_postmaster_start_time() IS NOT NULL")
        assert pg_cluster.folder.exists()
    finally:
        await conn.close()


def test_a_cluster_runs_as_the_postgres_user_and_leaves_nothing_behind(
    pg_cluster: PgCluster,
) -> None:
    del pg_cluster  # skips (or fails under CI) as the others do when PostgreSQL is missing
    me = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    with private_cluster() as cluster:
        folder, port = cluster.folder, cluster.port
        owner = (folder / "data" / "PG_VERSION").stat().st_uid
        assert pwd.getpwuid(owner).pw_name == me
        assert (cluster.socket_dir / f".s.PGSQL.{port}").exists()
    assert not folder.exists()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
