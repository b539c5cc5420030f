"""The store file as a user meets it: damage said in one line, private modes, no password shown."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.redact import redact_url
from gateway.store.database import Database
from gateway.store.file import prepare_store_file

CTGW = [sys.executable, "-m", "gateway"]
COMMANDS = (["db", "migrate"], ["numbers", "list"], ["keys", "create", "me"], ["report", "pools"])


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[http]
port = 0
[store]
url = "{url}"
[agi]
enabled = false
[[sites]]
key = "demo"
[[sites.pools]]
target = "+14155550100"
numbers = ["+14155550101", "+14155550102"]
""",
        encoding="utf-8",
    )
    return path


def ctgw(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CTGW, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def good_store(tmp_path: Path) -> Path:
    """A store with the demo site seeded, written by the CLI itself."""
    store = tmp_path / "ctgw.db"
    done = ctgw(write_config(tmp_path, f"sqlite:///{store}"), "numbers", "list")
    assert done.returncode == 0, done.stderr
    return store


def random_bytes(store: Path) -> None:
    store.write_bytes(random.Random(7).randbytes(20_000))


def truncated(store: Path) -> None:
    with store.open("r+b") as handle:
        handle.truncate(store.stat().st_size // 2)


def damaged_page(store: Path) -> None:
    # The header is intact, so SQLite opens the file; the second page is garbage.
    with store.open("r+b") as handle:
        handle.seek(4096)
        handle.write(bytes((i * 37 + 11) % 256 for i in range(4096)))


def directory(store: Path) -> None:
    store.unlink()
    store.mkdir()


@contextlib.contextmanager
def read_only(store: Path) -> Iterator[None]:
    """The store cannot be written, even by root (an immutable file)."""
    if os.geteuid() != 0:
        store.chmod(0o400)
        yield
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(store)]).returncode:
        pytest.skip("cannot make a file immutable here (chattr)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(store)], check=True)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "random bytes": random_bytes,
    "truncated": truncated,
    "damaged page": damaged_page,
    "directory": directory,
}


def assert_one_line_error(done: subprocess.CompletedProcess[str], store: Path) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    # Log lines are JSON; what a user reads is the one line that is not.
    said = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("ctgw: error: ") and str(store) in said[0], said
    assert done.returncode == 2


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_store_is_one_line_error_for_every_command(tmp_path: Path, damage: str) -> None:
    """Each command meets a damaged store with one `ctgw: error:` line naming it, no traceback."""
    store = good_store(tmp_path)
    DAMAGE[damage](store)
    config = tmp_path / "gateway.toml"
    for command in COMMANDS:
        assert_one_line_error(ctgw(config, *command), store)
    assert_one_line_error(ctgw(config, "serve"), store)
    doctor = ctgw(config, "doctor")
    assert "Traceback" not in doctor.stderr + doctor.stdout, doctor.stderr
    (line,) = [x for x in doctor.stdout.splitlines() if x.startswith("store:")]
    assert line.startswith("store: FAIL") and str(store) in line
    assert doctor.returncode == 1


def test_read_only_store_is_one_line_error(tmp_path: Path) -> None:
    """A store that cannot be written stops the commands that write with one error line."""
    store = good_store(tmp_path)
    config = tmp_path / "gateway.toml"
    with read_only(store):
        for command in (["numbers", "list"], ["keys", "create", "me"], ["serve"]):
            done = ctgw(config, *command)
            assert "Traceback" not in done.stderr, done.stderr
            said = [line for line in done.stderr.splitlines() if not line.startswith("{")]
            assert len(said) == 1 and said[0].startswith("ctgw: error: "), done.stderr
            assert done.returncode == 2


def test_doctor_finds_damage_that_opening_does_not(tmp_path: Path) -> None:
    """`ctgw doctor` checks every page: a damaged table that a start never reads is a FAIL."""
    store = good_store(tmp_path)
    pages = store.stat().st_size // 4096
    with store.open("r+b") as handle:
        handle.seek((pages - 1) * 4096)  # the last page: an index no start reads
        handle.write(bytes((i * 37 + 11) % 256 for i in range(4096)))
    doctor = ctgw(tmp_path / "gateway.toml", "doctor")
    (line,) = [x for x in doctor.stdout.splitlines() if x.startswith("store:")]
    assert line.startswith(f"store: FAIL store {store} is damaged"), doctor.stdout
    assert doctor.returncode == 1


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_new_store_and_its_wal_files_are_private(tmp_path: Path) -> None:
    """A new store file and the -wal and -shm files SQLite makes beside it are mode 0600."""
    store = tmp_path / "var" / "ctgw.db"
    db = await Database.open(f"sqlite:///{store}")
    try:
        files = [store, Path(f"{store}-wal"), Path(f"{store}-shm")]
        assert all(f.exists() for f in files)
        assert [mode(f) for f in files] == [0o600] * 3
    finally:
        await db.close()


def test_existing_store_readable_by_others_is_tightened_and_logged_once(tmp_path: Path) -> None:
    """A store (and -wal) others may read becomes 0600 at open, with one log line, once."""
    store = good_store(tmp_path)
    wal = Path(f"{store}-wal")
    wal.write_bytes(b"")
    store.chmod(0o644)
    wal.chmod(0o664)
    config = tmp_path / "gateway.toml"
    first = ctgw(config, "db", "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("store_permissions_tightened") == 1
    assert mode(store) == 0o600
    second = ctgw(config, "db", "migrate")
    assert "store_permissions_tightened" not in second.stderr


def test_read_only_store_stays_read_only_when_tightened(tmp_path: Path) -> None:
    """Tightening keeps the owner's own bits: a 0444 store becomes 0400, not writable."""
    store = tmp_path / "ctgw.db"
    store.write_bytes(b"")
    store.chmod(0o444)
    prepare_store_file(store)
    assert mode(store) == 0o400


SECRET_URLS = (
    "postgresql://ctgw:s3cret-pw@db.internal:5432/ctgw",
    "postgres://ctgw:s3cret-pw@db.internal/ctgw?sslmode=require",
    "postgresql://db.internal/ctgw?user=ctgw&password=s3cret-pw",
    "postgresql://ctgw:s3cret@pw@db.internal/ctgw",
)


@pytest.mark.parametrize("url", SECRET_URLS)
def test_store_url_password_never_shown(tmp_path: Path, url: str) -> None:
    """A PostgreSQL URL's password is in no error or log line of any command (each opens the
    store and cannot reach db.internal: the error says so, with the password as ***)."""
    config = write_config(tmp_path, url)
    commands = (*COMMANDS, ["doctor"], ["serve"]) if url == SECRET_URLS[0] else (["serve"],)
    for command in commands:
        done = ctgw(config, *command)
        assert done.returncode != 0
        assert "s3cret" not in done.stdout + done.stderr, (command, done.stderr)
        assert "ctgw: error: " in done.stderr or "store: FAIL" in done.stdout
        assert "cannot open PostgreSQL" in done.stdout + done.stderr, (command, done.stderr)


@pytest.mark.parametrize("url", SECRET_URLS)
def test_redacted_url_keeps_user_and_host(url: str) -> None:
    """redact_url hides the password and keeps enough to recognise the store."""
    shown = redact_url(url)
    assert "s3cret" not in shown and "***" in shown
    assert shown.startswith(url.split("://")[0] + "://")


def test_redacted_url_leaves_urls_without_password_alone() -> None:
    """URLs with no password are shown as they are."""
    for url in ("sqlite:///var/ctgw.db", "postgresql://ctgw@db/ctgw", "postgresql:///ctgw"):
        assert redact_url(url) == url
