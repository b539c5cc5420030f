"""`ctgw users create --endpoint`: an agent's phones from the command line, checked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.daemon.test_cli_users import config, ctgw

__all__ = ["config"]  # the fixture, used by name

pytestmark = pytest.mark.timeout(120)


def _endpoints(config: Path, email: str) -> list[str]:
    with sqlite3.connect(config.parent / "ctgw.db") as db:
        rows = db.execute(
            "SELECT endpoint FROM agent_endpoints JOIN staff_users USING (user_id)"
            " WHERE email = ? ORDER BY endpoint",
            (email,),
        )
        return [r[0] for r in rows]


def test_an_agent_is_created_with_its_endpoints(config: Path) -> None:
    made = ctgw(
        config,
        *("users", "create", "ann@example.com", "--role", "agent", "--site", "demo"),
        *("--endpoint", "pjsip/agent1", "--endpoint", "Local/desk@phones"),
        *("--password-stdin",),
        stdin="a long enough secret\n",
    )
    assert made.returncode == 0, made.stderr
    assert _endpoints(config, "ann@example.com") == ["Local/desk@phones", "PJSIP/agent1"]


@pytest.mark.parametrize(
    ("role", "endpoint", "says"),
    [
        ("agent", "PJSIP/a,PJSIP/b", "technology/resource"),
        ("agent", "PJSIP/a|b", "technology/resource"),
        ("agent", "agent1", "technology/resource"),
        ("marketer", "PJSIP/agent1", "endpoints are for agents"),
    ],
)
def test_bad_endpoints_are_refused_and_no_user_is_made(
    config: Path, role: str, endpoint: str, says: str
) -> None:
    made = ctgw(
        config,
        *("users", "create", "bob@example.com", "--role", role, "--site", "demo"),
        *("--endpoint", endpoint, "--password-stdin"),
        stdin="a long enough secret\n",
    )
    assert made.returncode != 0 and says in made.stderr
    listed = ctgw(config, "users", "list")
    assert "bob@example.com" not in listed.stdout
