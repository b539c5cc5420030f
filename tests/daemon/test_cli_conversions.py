"""`ctgw conversions export` as cron and an operator run it, in a subprocess on the real clock:
a new-only file holds the calls old enough for the platform, holds back (and leaves unsent) a
call under 12 hours old and says so; a period file says what is too recent; `--again` makes a
file again; bad input is one line on stderr, exit 2, nothing marked sent."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.api.test_conversion_holdback import _call
from tests.api.test_conversions_api import _raw, _toml
from tests.daemon.test_cli_users import ctgw

pytestmark = pytest.mark.timeout(180)

NEW_YORK = ZoneInfo("America/New_York")
EXPORT = ("conversions", "export", "--site", "demo")
_DAY = r"\d{4}-\d{2}-\d{2}"


def _name(kind: str, *, new: bool) -> str:
    """The file name pattern: site, kind, the default period, a stamp when new-only."""
    stamp = r"_new-\d{8}T\d{6}Z" if new else ""
    return rf"conversions_demo_{kind}_{_DAY}_{_DAY}{stamp}\.csv"


class Store:
    """A config and its store holding two answered calls: c1 11 h old, c2 30 h old."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = tmp_path / "gateway.toml"
        self.config.write_text(_toml(_raw(tmp_path)), encoding="utf-8")
        made = ctgw(self.config, "conversions", "list", "--site", "demo")  # makes the store
        assert made.returncode == 0, made.stderr
        now = datetime.now(UTC).replace(microsecond=0)
        self.began = {1: now - timedelta(hours=11), 2: now - timedelta(hours=30)}
        with sqlite3.connect(tmp_path / "ctgw.db") as db:
            for write in [
                *_call(1, self.began[1], gclid="RECENT1"),
                *_call(2, self.began[2], gclid="OLD2"),
            ]:
                db.execute(write.sql, write.params)

    def row(self, n: int) -> list[str]:
        """Call n's row of a Google Ads call-conversion file (site zone, ends after 125 s)."""
        began = self.began[n]
        start, end = (
            f"{t.astimezone(NEW_YORK):%Y-%m-%d %H:%M:%S}"
            for t in (began, began + timedelta(seconds=125))
        )
        return [f"+1202555{n:04d}", start, "Call from ads", end, "20", "USD"]

    def sent(self) -> list[list[str]]:
        """`ctgw conversions list`: call, platform, state, sent at, answer (the file name)."""
        listed = ctgw(self.config, "conversions", "list", "--site", "demo")
        assert listed.returncode == 0, listed.stderr
        return [line.split("\t") for line in listed.stdout.splitlines()]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def _rows(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["Parameters:TimeZone=America/New_York"]
    return rows[2:]


def _said(stderr: str, pattern: str) -> str:
    """The command's last stderr line, which must match `pattern` whole; its first group."""
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    found = re.fullmatch(pattern, last)
    assert found, last
    return found.group(1)


def test_a_new_only_file_holds_old_calls_and_holds_back_a_recent_one(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "exports" / "calls.csv"
    args = (*EXPORT, "--platform", "google-ads-calls", "--new-only")
    made = ctgw(store.config, *args, "--output", str(out))
    assert made.returncode == 0, made.stderr
    assert made.stdout == ""  # the file went to --output
    assert _rows(out.read_text(encoding="utf-8")) == [store.row(2)]
    name = _said(
        made.stderr,
        rf"1 conversions \(({_name('google-ads-calls', new=True)})\), 1 held back as too recent",
    )
    # Only the call in the file is sent; the held-back one is still new.
    assert [r[:3] + r[4:] for r in store.sent()] == [["c2", "google_ads_calls", "sent", name]]

    second = ctgw(store.config, *args)
    assert second.returncode == 0, second.stderr
    assert _rows(second.stdout) == []
    _said(
        second.stderr,
        rf"0 conversions \(({_name('google-ads-calls', new=True)})\), 1 held back as too recent",
    )
    assert [r[0] for r in store.sent()] == ["c2"]


def test_click_conversions_wait_only_6_hours(store: Store) -> None:
    made = ctgw(store.config, *EXPORT, "--platform", "google-ads", "--new-only")
    assert made.returncode == 0, made.stderr
    # Both calls' clicks are over 6 h old: both go, nothing is held back.
    assert sorted(r[0] for r in _rows(made.stdout)) == ["OLD2", "RECENT1"]
    _said(made.stderr, rf"2 conversions \(({_name('google-ads', new=True)})\)")
    assert sorted(r[0] for r in store.sent()) == ["c1", "c2"]


def test_a_period_file_holds_a_recent_call_says_so_and_marks_nothing(store: Store) -> None:
    made = ctgw(store.config, *EXPORT, "--platform", "google-ads-calls")
    assert made.returncode == 0, made.stderr
    assert _rows(made.stdout) == [store.row(2), store.row(1)]
    _said(
        made.stderr,
        rf"2 conversions \(({_name('google-ads-calls', new=False)})\),"
        r" 1 too recent for the platform yet",
    )
    assert store.sent() == []
    clicks = ctgw(store.config, *EXPORT, "--platform", "google-ads")
    assert clicks.returncode == 0, clicks.stderr
    _said(clicks.stderr, rf"2 conversions \(({_name('google-ads', new=False)})\)")
    # The period file recorded nothing: the old call is still new for a new-only file.
    new = ctgw(store.config, *EXPORT, "--platform", "google-ads-calls", "--new-only")
    assert _rows(new.stdout) == [store.row(2)]


def test_again_gives_the_same_file_and_records_nothing_more(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    args = (*EXPORT, "--platform", "google-ads-calls")
    made = ctgw(store.config, *args, "--new-only", "--output", str(out))
    assert made.returncode == 0, made.stderr
    name = _said(made.stderr, rf"1 conversions \(({_name('google-ads-calls', new=True)})\), .*")
    again = ctgw(store.config, *args, "--again", name)
    assert again.returncode == 0, again.stderr
    assert again.stdout == out.read_text(encoding="utf-8")
    assert _said(again.stderr, r"1 conversions \((.*)\)") == name
    copy = tmp_path / "copy" / "calls.csv"
    to_file = ctgw(store.config, *args, "--again", name, "--output", str(copy))
    assert to_file.returncode == 0 and copy.read_bytes() == out.read_bytes()
    assert [r[0] for r in store.sent()] == ["c2"]


_USAGE = r"ctgw conversions export: error: "

_BAD = {
    "unknown platform": (("--platform", "facebook"), _USAGE + r"argument --platform: invalid"),
    "click id": (("--platform", "google-ads", "--click-id", "msclkid"), _USAGE + "argument"),
    "since not a day": (("--since", "yesterday"), r"ctgw: error: 'since' must be a day"),
    "until before since": (
        ("--since", "2026-03-10", "--until", "2026-03-01"),
        r"ctgw: error: 'until' \(2026-03-01\) is before 'since'",
    ),
    "no such day": (("--until", "2026-02-30"), r"ctgw: error: .*(day|until)"),
    "too long": (("--since", "2020-01-01", "--until", "2026-03-10"), r"ctgw: error: .* 400"),
    "unknown site": (("--site", "nope"), r"ctgw: error: no site has the key 'nope'"),
    "again and new-only": (("--again", "x.csv"), r"ctgw: error: give --again or --new-only"),
    "until too early": (("--until", "0001-01-05"), r"ctgw: error: .*(early|range|until)"),
}


@pytest.mark.parametrize("case", list(_BAD))
def test_bad_input_is_one_line_exit_2_and_marks_nothing(store: Store, case: str) -> None:
    args, message = _BAD[case]
    options = dict(zip(args[::2], args[1::2], strict=True))
    command = [*EXPORT, "--platform", "google-ads-calls", "--new-only"]
    for option, value in options.items():
        if option in command:
            command[command.index(option) + 1] = value
        else:
            command += [option, value]
    done = ctgw(store.config, *command)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    # argparse puts its usage above its one error line; our own errors are the line alone.
    assert [line for line in lines if "error:" in line] == [lines[-1]]
    assert len(lines) == 1 or lines[0].startswith("usage: ")
    assert re.match(message, lines[-1]), lines[-1]
    assert store.sent() == []


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_an_unwritable_output_is_one_line_and_loses_no_call(
    store: Store, tmp_path: Path, where: str
) -> None:
    """Refused before anything is exported: no call is marked sent into a file never written."""
    output = tmp_path if where == "a folder" else tmp_path / "plain" / "out.csv"
    if where == "under a file":
        (tmp_path / "plain").write_text("x")
    args = (*EXPORT, "--platform", "google-ads-calls", "--new-only")
    done = ctgw(store.config, *args, "--output", str(output))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ctgw: error: "), lines
    assert store.sent() == []
