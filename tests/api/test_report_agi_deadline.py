"""The heaviest report runs off the event loop: FastAGI routes are not held meanwhile."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest

from bench.report_history import write_history
from gateway.appkeys import AGI, CONFIG, DB
from gateway.store.keys import create_key
from tests.api.conftest import demo_config
from tests.api.test_calls_export import assert_routes_not_held, outside

CALLS = 100_000
END = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)
# The most a report covers (reports.period.MAX_DAYS), read call by call: the first touch of
# each call is its caller's first call, which no GROUP BY gives.
HEAVIEST = (
    "/v1/reports/breakdown?site=demo&since=2024-11-26&until=2025-12-30&by=campaign"
    "&touch=first&format=xlsx"
)


@pytest.mark.timeout(240)
async def test_fastagi_routes_are_not_held_by_the_heaviest_report(
    make_client, tmp_path: Path
) -> None:
    """While a 400-day first-touch breakdown of 100,000 calls is made as XLSX, no FastAGI route
    waits for it, every route is whole or cleanly dropped at the deadline, and the file is
    whole."""
    write_history(
        tmp_path / "ctgw.db", calls=CALLS, sessions=3 * CALLS, days=400, end=END, site="demo"
    )
    client = await make_client(demo_config(tmp_path))
    key = await create_key(client.app[DB], "test", datetime.now(UTC))
    deadline = client.app[CONFIG].agi.deadline_ms / 1000
    stop, xlsx_file = tmp_path / "reported", tmp_path / "report.xlsx"
    calling = asyncio.ensure_future(outside("asterisk", str(client.app[AGI].port), str(stop)))
    try:
        got = await outside("download", str(client.server.port), HEAVIEST, key, str(xlsx_file))
    finally:
        stop.touch()
        calls = await calling

    during = [c for c in calls if got["start"] < c["start"] < got["end"]]
    took = got["end"] - got["start"]
    # On the loop, a report this long would hold every route past its deadline.
    assert took > 4 * deadline, f"the report took only {took:.2f} s: too light to tell"
    assert len(during) >= 3, f"{len(during)} calls while the report ran ({took:.2f} s)"
    assert_routes_not_held(calls, during, took, deadline, client.app[AGI].outcomes)
    assert got["status"] == 200, got
    assert "first-touch.xlsx" in got["headers"]["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(xlsx_file.read_bytes()), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[0][:2] == ("campaign", "calls")
    counted = sum(int(r[1]) for r in rows[1:])
    assert CALLS * 0.95 < counted < CALLS, "every call but the 1 % spam, in some campaign"
    slowest = max(c["seconds"] for c in calls)
    print(f"{len(during)} routes during a {took:.2f} s report, slowest {slowest:.3f} s")
