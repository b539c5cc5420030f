"""`ctgw keys` as an operator uses it: create, list, revoke, and a running gateway that obeys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.daemon.test_restart import free_port, start_daemon, stop_daemon, write_config

CTGW = [sys.executable, "-m", "gateway"]


def ctgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CTGW, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, free_port())


def test_list_shows_names_and_dates_never_keys(config: Path) -> None:
    """`keys list` shows each key's name, creation and state, and neither the key nor its hash."""
    first = ctgw(config, "keys", "create", "ops")
    second = ctgw(config, "keys", "create", "reports")
    assert first.returncode == second.returncode == 0
    listed = ctgw(config, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["ops", "reports"]
    assert all("\tcreated 20" in line and line.endswith("\tlive") for line in lines)
    for key in (first.stdout.strip(), second.stdout.strip()):
        assert key not in listed.stdout and key.removeprefix("ctgw_")[:8] not in listed.stdout
    assert all(len(field) < 40 for line in lines for field in line.split("\t")[:1])


def test_second_key_with_a_name_in_use_is_refused(config: Path) -> None:
    """Creating a key under a live key's name fails with a clear error, exit 2, nothing stored."""
    assert ctgw(config, "keys", "create", "ops").returncode == 0
    again = ctgw(config, "keys", "create", "ops")
    assert again.returncode == 2 and again.stdout == ""
    assert "ctgw: error: an API key named 'ops' exists already" in again.stderr
    assert len(ctgw(config, "keys", "list").stdout.splitlines()) == 1


def test_revoke_unknown_name_is_an_error(config: Path) -> None:
    """Revoking a name no live key has says so, exit 2."""
    done = ctgw(config, "keys", "revoke", "nobody")
    assert done.returncode == 2 and "no live API key named 'nobody'" in done.stderr


async def test_revoked_key_is_refused_at_once_by_a_running_gateway(tmp_path: Path) -> None:
    """A key revoked with the CLI gets 401 from the running gateway on its next request; its
    name may then be used again."""
    port = free_port()
    config = write_config(tmp_path, port)
    key = ctgw(config, "keys", "create", "ops").stdout.strip()
    proc = await start_daemon(config, port)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/v1/sites"
            auth = {"Authorization": f"Bearer {key}"}
            async with http.get(url, headers=auth) as resp:
                assert resp.status == 200
            revoked = ctgw(config, "keys", "revoke", "ops")
            assert revoked.returncode == 0, revoked.stderr
            async with http.get(url, headers=auth) as resp:
                assert resp.status == 401
                assert (await resp.json())["error"]["code"] == "unauthorized"
    finally:
        stop_daemon(proc)
    listed = ctgw(config, "keys", "list").stdout
    assert "\trevoked 20" in listed
    assert ctgw(config, "keys", "create", "ops").returncode == 0


@pytest.mark.parametrize(
    "command",
    [
        ["numbers", "list"],
        ["keys", "list"],
        ["report", "pools"],
        ["report", "pools", "--json"],
        ["doctor"],
        ["db", "migrate"],
    ],
)
def test_printing_commands_exit_quietly_on_a_closed_pipe(config: Path, command: list[str]) -> None:
    """`ctgw ... | head` with the reader gone: no traceback, no BrokenPipeError message."""
    assert ctgw(config, "keys", "create", "ops").returncode == 0  # something for keys list
    proc = subprocess.Popen(
        [*CTGW, *command, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode in (0, 1, 141)
