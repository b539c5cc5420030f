"""`ctgw users` as an operator uses it: create with a given or a made-up password, list (never a
hash), and clear errors for what is wrong."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.store.staff import verify_password
from tests.daemon.test_restart import free_port, write_config

pytestmark = pytest.mark.timeout(120)

CTGW = [sys.executable, "-m", "gateway"]


def ctgw(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CTGW, *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, free_port())


def _stored_hash(config: Path, email: str) -> str:
    with sqlite3.connect(config.parent / "ctgw.db") as db:
        row = db.execute("SELECT password_hash FROM staff_users WHERE email = ?", (email,))
        return str(row.fetchone()[0])


def test_create_from_stdin_and_list(config: Path) -> None:
    """A password from stdin is stored hashed; `users list` shows email, role, sites and name,
    never a hash or the password."""
    made = ctgw(
        config,
        *("users", "create", "Mia@Example.com", "--role", "marketer", "--site", "demo"),
        *("--name", "Mia M", "--password-stdin"),
        stdin="a long enough secret\n",
    )
    assert made.returncode == 0, made.stderr
    assert "a long enough secret" not in made.stdout + made.stderr
    admin = ctgw(config, "users", "create", "root@example.com", "--role", "admin")
    assert admin.returncode == 0, admin.stderr
    password = admin.stdout.strip()
    assert len(password) >= 12 and "shown only this once" in admin.stderr
    assert verify_password(password, _stored_hash(config, "root@example.com"))
    assert verify_password("a long enough secret", _stored_hash(config, "mia@example.com"))

    listed = ctgw(config, "users", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "mia@example.com\tmarketer\tdemo\tMia M",
        "root@example.com\tadmin\t*\t",
    ]
    assert "scrypt" not in listed.stdout and password not in listed.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["not-an-email", "--role", "admin"], "", "e-mail address is not valid"),
        (["a@example.com", "--role", "owner"], "", "role must be one of: admin, marketer, agent"),
        (["a@example.com", "--role", "agent"], "", "needs at least one site"),
        (["a@example.com", "--role", "marketer", "--site", "nope"], "", "no such site: 'nope'"),
        (["a@example.com", "--role", "admin", "--password-stdin"], "short\n", "password must be"),
    ],
)
def test_bad_input_is_a_clear_error(
    config: Path, args: list[str], stdin: str, message: str
) -> None:
    """Each mistake: `ctgw: error: ...` naming it, exit 2, no user stored."""
    done = ctgw(config, "users", "create", *args, stdin=stdin)
    assert done.returncode == 2 and done.stdout == ""
    last = done.stderr.splitlines()[-1]  # after the store's migration log lines
    assert last.startswith("ctgw: error: ") and message in last, done.stderr
    assert ctgw(config, "users", "list").stdout == ""


def test_an_email_in_use_is_refused(config: Path) -> None:
    assert ctgw(config, "users", "create", "a@example.com", "--role", "admin").returncode == 0
    again = ctgw(config, "users", "create", "A@example.com", "--role", "admin")
    assert again.returncode == 2 and "exists already" in again.stderr
