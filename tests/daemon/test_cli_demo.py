"""`ctgw demo seed` as `make run` uses it: a seeded history in an empty demo site, once; the
calls read back through the admin API as any other calls."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import load_config
from gateway.store.calls import record_from_row
from gateway.store.keys import create_key
from numberpool.calls import ATTRIBUTION_FIELDS
from tests.daemon.test_restart import free_port, write_config

CTGW = [sys.executable, "-m", "gateway"]
# What the API shows of each call (gateway/store/calls.py call_json).
CALL_KEYS = {
    "call_id", "site", "dialed", "caller", "caller_name", "started_at", "answered_at",
    "ended_at", "state", "agent", "route", "ring_seconds", "talk_seconds", "hangup_cause",
    "recording", "first_time", "test_call", "direction", "attribution",
}  # fmt: skip


def ctgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CTGW, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = write_config(tmp_path, free_port())
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('key = "demo"\n', 'key = "demo"\ntimezone = "America/Los_Angeles"\n', 1),
        encoding="utf-8",
    )
    with path.open("a", encoding="utf-8") as toml:
        toml.write(
            '[[sites.static_numbers]]\nnumber = "+14155550150"\nsource = "print"\n'
            'medium = "offline"\ncampaign = "yellow-pages"\n'
        )
    return path


def store(config: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(config.parent / "ctgw.db")
    conn.row_factory = sqlite3.Row
    return conn


def counts(config: Path) -> tuple[int, ...]:
    with store(config) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM sessions),"
            " (SELECT count(*) FROM leases), (SELECT count(*) FROM contacts),"
            " (SELECT count(*) FROM campaign_costs)"
        ).fetchone()
    return tuple(row)


def test_seeds_an_empty_site_once(config: Path) -> None:
    """The first run writes the history and says so in one line, then where to log in; the
    second leaves it alone."""
    first = ctgw(config, "demo", "seed")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("demo: wrote 90 days of seeded history")
    assert lines[1].startswith("demo: dashboard http://")
    calls, sessions, leases, contacts, costs = counts(config)
    assert 600 <= calls <= 1600 and sessions > 10 * calls and leases and contacts and costs
    assert f"{calls} calls" in lines[0] and f"{sessions} visits" in lines[0]
    again = ctgw(config, "demo", "seed", "--seed", "2")
    assert again.returncode == 0, again.stderr
    said = again.stdout.splitlines()
    assert said[0] == f"demo: site 'demo' already has {calls} calls, left alone"
    assert said[1].startswith("demo: dashboard http://")
    assert counts(config) == (calls, sessions, leases, contacts, costs)


def test_days_and_unknown_site(config: Path) -> None:
    wrong = ctgw(config, "demo", "seed", "--site", "nope")
    assert wrong.returncode == 2 and "no site 'nope'" in wrong.stderr
    assert ctgw(config, "demo", "seed", "--days", "0").returncode == 2
    short = ctgw(config, "demo", "seed", "--days", "7")
    assert short.returncode == 0, short.stderr
    with store(config) as conn:
        oldest = conn.execute("SELECT min(started_at) FROM calls").fetchone()[0]
        spam = conn.execute("SELECT count(*) FROM calls WHERE spam NOT IN (0, 1)").fetchone()[0]
    age = datetime.now(UTC) - datetime.fromisoformat(oldest)
    assert age.days < 7 and spam == 0


async def test_seeded_calls_read_back_through_the_api(config: Path, aiohttp_client) -> None:
    """Every seeded call comes out of GET /v1/calls in the API's shape, valid JSON, and each
    stored row reads as a CallRecord."""
    assert ctgw(config, "demo", "seed").returncode == 0
    total = counts(config)[0]
    client = await aiohttp_client(create_app(load_config(str(config))))
    key = await create_key(client.app[DB], "test", datetime.now(UTC))
    auth = {"Authorization": f"Bearer {key}"}
    seen: list[dict[str, Any]] = []
    while len(seen) < total:
        resp = await client.get(
            "/v1/calls",
            params={"site": "demo", "limit": "1000", "offset": str(len(seen))},
            headers=auth,
        )
        assert resp.status == 200
        page = json.loads(await resp.text())["calls"]
        assert page
        seen += page
    assert len(seen) == total
    assert all(set(call) == CALL_KEYS for call in seen)
    assert all(list(call["attribution"]) == list(ATTRIBUTION_FIELDS) for call in seen)
    kinds = {call["attribution"]["kind"] for call in seen}
    assert kinds == {"active", "probable", "overflow", "static", "unattributed"}
    one = await client.get(f"/v1/calls/{seen[0]['call_id']}", headers=auth)
    assert one.status == 200 and (await one.json()) == seen[0]
    with store(config) as conn:
        records = [record_from_row(row) for row in conn.execute("SELECT * FROM calls")]
    assert {r.call_id for r in records} == {c["call_id"] for c in seen}
    assert {r.attribution.source for r in records if r.attribution.kind == "static"} == {"print"}
    # Shaped in the site's zone: mostly in its business hours.
    zone = ZoneInfo("America/Los_Angeles")
    local = [datetime.fromisoformat(r.started_at).astimezone(zone) for r in records]
    assert sum(1 for at in local if at.weekday() < 5 and 9 <= at.hour < 17) > len(local) / 2


@pytest.mark.timeout(120)
async def test_the_demo_login_is_made_once_with_its_password_readable_by_the_owner_only(
    config: Path,
) -> None:
    from gateway.store.database import Database
    from gateway.store.staff import authenticate

    first = ctgw(config, "demo", "seed", "--days", "2")
    assert first.returncode == 0, first.stderr
    login = config.parent / "demo-login.txt"
    assert f"log in with the e-mail and password in {login}" in first.stdout
    assert login.stat().st_mode & 0o777 == 0o600
    fields = dict(line.split(": ", 1) for line in login.read_text().splitlines())
    again = ctgw(config, "demo", "seed", "--days", "2")
    assert again.returncode == 0, again.stderr
    assert dict(line.split(": ", 1) for line in login.read_text().splitlines()) == fields
    db = await Database.open(f"sqlite:///{config.parent / 'ctgw.db'}")
    try:
        user = await authenticate(db, fields["e-mail"], fields["password"])
        assert user is not None and user.role == "admin"
        assert await authenticate(db, fields["e-mail"], fields["password"] + "x") is None
    finally:
        await db.close()


@pytest.mark.timeout(120)
def test_the_history_went_through_the_crm_rules(config: Path) -> None:
    """Leads moved and follow-ups made as the gateway would have: answered calls with talk
    made their lead `contacted`; missed ones opened tasks, those of the last week still open."""
    seeded = ctgw(config, "demo", "seed", "--days", "30")
    assert seeded.returncode == 0, seeded.stderr
    with store(config) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM leads GROUP BY 1").fetchall())
        assert statuses.get("contacted", 0) > 0 and statuses.get("new", 0) > 0
        unanswered = conn.execute(
            "SELECT count(*) FROM calls WHERE state IN ('missed', 'abandoned')"
            " AND contact_id IS NOT NULL"
        ).fetchone()[0]
        tasks = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        assert tasks == unanswered > 0
        late = conn.execute(
            "SELECT count(*) FROM tasks WHERE closed_at IS NULL"
            " AND due_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')"
        ).fetchone()[0]
        still_open = conn.execute("SELECT count(*) FROM tasks WHERE closed_at IS NULL")
        assert late == 0 and still_open.fetchone()[0] > 0
