"""`ctgw report calls` as a cron job runs it: a table on stdout, CSV/XLSX/JSON to a file."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from gateway.store.migrate import apply_migrations

CTGW = [sys.executable, "-m", "gateway"]
ROOT = Path(__file__).resolve().parents[2]


def ctgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CTGW, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    store = tmp_path / "ctgw.db"
    conn = sqlite3.connect(store, isolation_level=None)
    apply_migrations(conn)
    rows = [
        # 23:30 on 2026-03-08 in New York (a Sunday), then the next morning.
        ("c1", "2026-03-09T03:30:00.000000Z", "spring", "+12025550001"),
        ("c2", "2026-03-09T13:00:00.000000Z", "brand", "+12025550002"),
        ("c3", "2026-03-08T13:00:00.000000Z", "spring", "+12025550003"),
    ]
    for call_id, started, campaign, caller in rows:
        conn.execute(
            "INSERT INTO calls (call_id, site, dialed, caller, started_at, state,"
            " attribution_kind, attribution, agent, talk_seconds)"
            " VALUES (?, 'demo', '+14155550101', ?, ?, 'answered', 'active', ?, 'alice', 30)",
            (call_id, caller, started, json.dumps({"source": "google", "campaign": campaign})),
        )
    conn.close()
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{store}"\n[log]\nlevel = "error"\n'
        '[[sites]]\nkey = "demo"\ntimezone = "America/New_York"\n',
        encoding="utf-8",
    )
    return path


def test_report_calls_prints_a_table_by_campaign(config: Path) -> None:
    done = ctgw(
        config,
        "report",
        "calls",
        "--site",
        "demo",
        "--since",
        "2026-03-08",
        "--until",
        "2026-03-08",
        "--by",
        "campaign",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "By campaign (last touch)"
    assert lines[2].split()[:2] == ["spring", "2"]  # 23:30 local is still the 8th


def test_report_calls_writes_xlsx_and_json_files(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "days.xlsx"
    done = ctgw(
        config,
        "report",
        "calls",
        "--site",
        "demo",
        "--since",
        "2026-03-08",
        "--until",
        "2026-03-09",
        "--report",
        "days",
        "--format",
        "xlsx",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(io.BytesIO(out.read_bytes())).active
    assert [row[1].value for row in sheet.iter_rows(min_row=2)] == [2, 1]
    out_json = tmp_path / "summary.json"
    done = ctgw(
        config,
        "report",
        "calls",
        "--site",
        "demo",
        "--since",
        "2026-03-09",
        "--until",
        "2026-03-09",
        "--format",
        "json",
        "--output",
        str(out_json),
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(out_json.read_text(encoding="utf-8"))
    assert (body["summary"]["calls"], body["previous"]["calls"]) == (1, 2)


def test_report_calls_refuses_bad_days_and_unknown_sites(config: Path) -> None:
    bad = ctgw(
        config,
        "report",
        "calls",
        "--site",
        "demo",
        "--since",
        "2026-03-09",
        "--until",
        "2026-03-01",
    )
    assert bad.returncode == 2 and "is before 'since'" in bad.stderr
    unknown = ctgw(config, "report", "calls", "--site", "nope")
    assert unknown.returncode == 2 and "no site 'nope'" in unknown.stderr
