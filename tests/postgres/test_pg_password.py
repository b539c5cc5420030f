"""The store's password reaches PostgreSQL and nothing else: not an error, not a log line."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest
from structlog.testing import capture_logs

from gateway.store.database import StoreError
from gateway.store.pg.database import PASSWORD_ENV, PgDatabase
from tests.lab.asterisk import free_port
from tests.lab.postgres import PgCluster

pytestmark = pytest.mark.postgres

SECRET = "Hunter2-s3cret"


async def _refused(url: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
    """The StoreError of opening `url`, having checked that nothing shown holds the secret."""
    with capture_logs() as logs, pytest.raises(StoreError) as refused:
        await PgDatabase.open(url)
    shown = [str(refused.value), repr(refused.value), repr(logs), caplog.text]
    shown += list(capsys.readouterr())
    assert not [text for text in shown if SECRET in text]
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    return refused.value


async def test_a_refused_connection_never_shows_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    error = await _refused(f"postgresql://ctgw@127.0.0.1:{free_port()}/ctgw", capsys, caplog)
    assert "cannot open PostgreSQL" in str(error) and "ctgw@127.0.0.1" in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ctgw:{secret}@127.0.0.1:{port}/ctgw",
        "postgresql://ctgw:{secret}@127.0.0.1:notaport/ctgw",
        "postgresql://ctgw@127.0.0.1:{port}/ctgw?password={secret}",
        "postgresql://ctgw:{secret}@[broken/ctgw",
    ],
    ids=["userinfo", "bad-port", "query", "unparsable"],
)
async def test_a_password_in_the_url_is_never_shown_either(
    url: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    await _refused(url.format(secret=SECRET, port=free_port()), capsys, caplog)


async def test_a_server_refusal_is_said_without_the_password(
    pg_cluster: PgCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await asyncpg.connect(pg_cluster.url)
    try:
        await admin.execute("DROP ROLE IF EXISTS ctgw_nologin")
        await admin.execute(f"CREATE ROLE ctgw_nologin NOLOGIN PASSWORD '{SECRET}'")
        monkeypatch.setenv(PASSWORD_ENV, SECRET)
        url = pg_cluster.url.replace("postgres@", "ctgw_nologin@")
        error = await _refused(url, capsys, caplog)
        assert "not permitted to log in" in str(error)
    finally:
        await admin.execute("DROP ROLE IF EXISTS ctgw_nologin")
        await admin.close()


async def test_an_open_store_names_itself_in_logs_without_the_password(
    pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, SECRET)  # the lab trusts loopback: any password passes
    url = pg_db.replace("postgres@", f"postgres:{SECRET}@")
    with capture_logs() as logs:
        db = await PgDatabase.open(url)
        try:
            await db.fetchall("SELECT 1")
        finally:
            await db.close()
    assert SECRET not in db.where and "postgres:***@" in db.where
    assert SECRET not in repr(logs)
