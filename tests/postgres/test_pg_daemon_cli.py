"""The store opened by its URL: `Database.open` picks the backend, and the CLI runs on
PostgreSQL (`db migrate`, `doctor`, `keys create`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.store.database import Database, StoreError, sqlite_path
from gateway.store.pg.database import PgDatabase
from gateway.store.sqlite_database import SqliteDatabase
from tests.lab.postgres import PgCluster
from tests.postgres.conftest import drop_database, empty_database
from tests.postgres.test_pg_daemon import SECRET

pytestmark = pytest.mark.postgres

CTGW = [sys.executable, "-m", "gateway"]


async def test_open_picks_the_backend_by_scheme(tmp_path: Path, pg_db: str) -> None:
    """sqlite:/// opens SQLite; postgresql:// and postgres:// open PostgreSQL."""
    opened = [
        await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}"),
        await Database.open(pg_db),
        await Database.open("postgres://" + pg_db.removeprefix("postgresql://")),
    ]
    try:
        assert [type(db) for db in opened] == [SqliteDatabase, PgDatabase, PgDatabase]
        assert [db.dialect for db in opened] == ["sqlite", "postgresql", "postgresql"]
    finally:
        for db in opened:
            await db.close()


def test_sqlite_path_says_why_a_url_has_no_file() -> None:
    """A PostgreSQL URL has no file (its password hidden); an unknown scheme names both."""
    with pytest.raises(StoreError, match="a PostgreSQL store has no file") as caught:
        sqlite_path("postgresql://ctgw:s3cret@db/ctgw")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(StoreError, match="sqlite:///PATH or postgresql://"):
        sqlite_path("mysql://db/ctgw")


def ctgw(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n[agi]\nenabled = false\n[ami]\nenabled = false\n'
        f'[asterisk]\nconfig_dir = "{tmp_path / "no-asterisk"}"\n'
        '[[sites]]\nkey = "demo"\n[[sites.pools]]\ntarget = "+14155550100"\n'
        'numbers = ["+14155550101"]\n',
        encoding="utf-8",
    )
    env = {"CTGW_STORE_PASSWORD": SECRET, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [*CTGW, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


async def test_cli_migrates_checks_and_writes_postgresql(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """`ctgw db migrate` on an empty database applies the schema, `doctor` says the store is
    ok (its URL shown), `keys create` stores the key's hash there; no output has the password."""
    url = await empty_database(pg_cluster)
    try:
        migrated = await asyncio.to_thread(ctgw, tmp_path, url, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert "0001_initial.sql" in migrated.stdout
        again = await asyncio.to_thread(ctgw, tmp_path, url, "db", "migrate")
        assert again.stdout.strip() == "store is up to date", again.stderr
        doctor = await asyncio.to_thread(ctgw, tmp_path, url, "doctor")
        assert f"store: ok ({url})" in doctor.stdout, doctor.stdout + doctor.stderr
        created = await asyncio.to_thread(ctgw, tmp_path, url, "keys", "create", "ops")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        conn = await asyncpg.connect(url)
        try:
            stored = await conn.fetchval("SELECT key_hash FROM api_keys")
        finally:
            await conn.close()
        assert stored and key not in stored
        for done in (migrated, again, doctor, created):
            assert SECRET not in done.stdout + done.stderr
    finally:
        await drop_database(pg_cluster, url)


async def test_a_store_postgresql_refuses_is_one_line_not_a_traceback(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """A read PostgreSQL refuses (here the api_keys table is gone) ends the command with a
    `ctgw: error:` line and exit 2, as a damaged SQLite file does: no traceback."""
    url = await empty_database(pg_cluster)
    try:
        migrated = await asyncio.to_thread(ctgw, tmp_path, url, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TABLE api_keys CASCADE")
        finally:
            await conn.close()
        listed = await asyncio.to_thread(ctgw, tmp_path, url, "keys", "list")
        assert listed.returncode == 2, listed.stderr
        assert "Traceback" not in listed.stderr, listed.stderr
        last = listed.stderr.strip().splitlines()[-1]
        assert last.startswith("ctgw: error: ") and "api_keys" in last, last
        assert SECRET not in listed.stderr
    finally:
        await drop_database(pg_cluster, url)
