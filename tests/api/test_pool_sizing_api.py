"""GET /v1/pools/{pool_id}/sizing and `ctgw report pools`: the pool's own sessions (opened
through the API) and calls (rows as the route writes them) replayed at candidate sizes."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.cli_store import STORE_COMMANDS, CliError
from gateway.config import parse_config
from gateway.store.database import Write
from gateway.store.times import ts
from tests.api.conftest import demo_config, open_session
from tests.conftest import FakeClock

POOL_ID = "demo:+14155550100"
URL = f"/v1/pools/{POOL_ID}/sizing"
_CALL_SQL = (
    "INSERT INTO calls (call_id, site, dialed, caller, started_at, state, attribution_kind,"
    " session_id, visitor_id) VALUES (?, 'demo', ?, ?, ?, 'answered', ?, ?, ?)"
)


async def six_visits_and_their_calls(client: TestClient, clock: FakeClock) -> None:
    """Six visits at once, each calling its number a minute later (credited `active`), and a
    call on the overflow number."""
    writes = []
    opened = clock.now()
    for i in range(6):
        body = await (await open_session(client)).json()
        number = body["numbers"][0]["number"]
        at = ts(opened + timedelta(minutes=1))
        writes.append(
            Write(
                _CALL_SQL,
                (
                    f"c{i}",
                    number,
                    f"+1202555{i:04d}",
                    at,
                    "active",
                    body["session_id"],
                    body["visitor_id"],
                ),
            )
        )
    at = ts(opened + timedelta(minutes=2))
    writes.append(Write(_CALL_SQL, ("c9", "+14155550120", "+12025550999", at, "overflow", "", "")))
    await client.app[DB].write(writes)


def period(clock: FakeClock) -> dict[str, str]:
    return {
        "since": (clock.now() - timedelta(hours=1)).isoformat(),
        "until": (clock.now() + timedelta(hours=1)).isoformat(),
    }


async def test_sizing_answers_right_wrong_unattributed_per_size(
    client: TestClient, admin_key: str, clock: FakeClock
) -> None:
    await six_visits_and_their_calls(client, clock)
    auth = {"Authorization": f"Bearer {admin_key}"}
    resp = await client.get(URL, params={**period(clock), "sizes": "2,6,10"}, headers=auth)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["pool_id"], body["current_size"]) == (POOL_ID, 10)
    assert (body["calls"], body["judged_calls"], body["overflow_calls"]) == (7, 6, 1)
    # Six visits live at once: two numbers leave four on the overflow number, whatever the
    # policy (nobody has called yet when they land, so no number can be shared).
    assert body["smallest_size"] == {"reuse": 6, "reuse_no_sharing": 6, "overflow": 6}
    assert body["policies"] == {
        "reuse": {"when_exhausted": "reuse", "share_called_numbers": True},
        "reuse_no_sharing": {"when_exhausted": "reuse", "share_called_numbers": False},
        "overflow": {"when_exhausted": "overflow", "share_called_numbers": False},
    }
    figures = {(f["policy"], f["size"]): f for f in body["sizes"]}
    policies = ("reuse", "reuse_no_sharing", "overflow")
    assert set(figures) == {(p, n) for p in policies for n in (2, 6, 10)}
    two = figures["reuse", 2]
    assert (two["right"], two["wrong"], two["unattributed"], two["cost_numbers"]) == (2, 0, 4, 2)
    assert (two["reused"], two["shared"]) == (0, 0)
    assert two["right_share"] == pytest.approx(2 / 6, abs=1e-4)
    six = figures["overflow", 6]
    assert (six["right"], six["right_share"], six["peak_live"], six["overflowed"]) == (6, 1.0, 6, 0)


async def test_sizing_defaults_to_the_last_week_and_sizes_around_the_peak(
    client: TestClient, admin_key: str, clock: FakeClock
) -> None:
    await six_visits_and_their_calls(client, clock)
    clock.advance(hours=1)
    resp = await client.get(URL, headers={"Authorization": f"Bearer {admin_key}"})
    assert resp.status == 200
    body = await resp.json()
    sizes = {f["size"] for f in body["sizes"]}
    assert {5, 6, 8, 10, 12} <= sizes  # 0.8x, 1.0x, 1.2x the peak, today's size, 2x
    assert body["smallest_size"]["reuse"] == 6


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ({"sizes": "0"}, "'sizes'"),
        ({"sizes": "ten"}, "'sizes'"),
        ({"sizes": "100001"}, "'sizes'"),
        ({"sizes": ""}, "'sizes'"),
        ({"since": "yesterday"}, "'since'"),
        ({"until": "2026-13-01"}, "'until'"),
        ({"since": "2026-01-02", "until": "2026-01-01"}, "before"),
        ({"since": "2020-01-01", "until": "2026-01-01"}, "366 days"),
    ],
)
async def test_bad_parameters_are_400(
    client: TestClient, admin_key: str, query: dict[str, str], word: str
) -> None:
    resp = await client.get(URL, params=query, headers={"Authorization": f"Bearer {admin_key}"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_parameter" and word in error["message"]


async def test_unknown_pool_is_404_and_no_key_is_401(client: TestClient, admin_key: str) -> None:
    resp = await client.get(
        "/v1/pools/demo:+19995550100/sizing", headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "unknown_pool"
    assert (await client.get(URL)).status == 401


async def test_report_pools_keeps_the_health_lines_and_adds_the_sizing(
    client: TestClient, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await six_visits_and_their_calls(client, clock)
    config = parse_config(demo_config(tmp_path), source="test")
    report = STORE_COMMANDS["report", "pools"]
    args = argparse.Namespace(json=False, sizes="2,6", **period(clock))
    capsys.readouterr()  # the app's log lines so far
    assert await report(config, args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{POOL_ID}\tsize 10\t")  # the health line, as before
    assert lines[1].startswith(f"sizing {POOL_ID} ") and "judged 6" in lines[1]
    assert any("size 2\tcost 2 numbers\tright 33.3%" in line for line in lines)
    assert any("smallest size for 99% right (reuse): 6 numbers" in line for line in lines)
    assert any(
        "reuse_no_sharing: reuse cooling numbers, never a live one" in line for line in lines
    )

    assert await report(config, argparse.Namespace(json=True, sizes="6", **period(clock))) == 0
    (pool,) = json.loads(capsys.readouterr().out)
    assert pool["pool_id"] == POOL_ID and "needs_growth" in pool
    assert pool["sizing"]["smallest_size"] == {"reuse": 6, "reuse_no_sharing": 6, "overflow": 6}

    with pytest.raises(CliError, match="--sizes"):
        await report(config, argparse.Namespace(json=False, sizes="0", since=None, until=None))
