"""Pool lease timing that would break every lease is refused, naming the pool and the key."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, parse_config
from tests.api.conftest import demo_config

POOL = "demo:+14155550100"


@pytest.mark.parametrize(
    ("timing", "key", "fragment"),
    [
        ({"grace_seconds": 0}, "grace_seconds", "at least heartbeat_seconds (60)"),
        ({"grace_seconds": 59}, "grace_seconds", "between two heartbeats"),
        ({"heartbeat_seconds": 120, "grace_seconds": 90}, "grace_seconds", "(90)"),
        ({"probation_seconds": 0}, "probation_seconds", "before its first heartbeat"),
        ({"probation_seconds": 30}, "probation_seconds", "at least heartbeat_seconds"),
        ({"heartbeat_seconds": 0}, "heartbeat_seconds", "must be 1-86400"),
        ({"heartbeat_seconds": 90_000, "grace_seconds": 10**6}, "heartbeat_seconds", "a day"),
        ({"cooldown_seconds": -1}, "cooldown_seconds", "must not be negative"),
        ({"cooldown_seconds": 10**15}, "cooldown_seconds", "ten years"),
        ({"attribution_window_seconds": 10**15}, "attribution_window_seconds", "ten years"),
        ({"grace_seconds": 2**64}, "grace_seconds", "ten years"),
    ],
)
def test_pool_timing_that_cannot_work_is_refused(
    tmp_path: Path, timing: dict[str, int], key: str, fragment: str
) -> None:
    """Grace or probation shorter than a heartbeat, no heartbeat, negative or calendar-breaking
    values: a ConfigError naming the pool's key and the pool."""
    with pytest.raises(ConfigError) as raised:
        parse_config(demo_config(tmp_path, **timing), source="gateway.toml")
    message = str(raised.value)
    assert f"'sites[0].pools[0].{key}'" in message and fragment in message
    if "negative" not in message:
        assert POOL in message


@pytest.mark.parametrize(
    "timing",
    [
        {},
        {"grace_seconds": 60, "probation_seconds": 60},
        {"heartbeat_seconds": 1, "grace_seconds": 1, "probation_seconds": 1},
        {"cooldown_seconds": 0, "attribution_window_seconds": 0},
        {
            "attribution_window_seconds": 30 * 86400,
            "heartbeat_seconds": 86400,
            "grace_seconds": 86400,
            "probation_seconds": 86400,
        },
    ],
)
def test_pool_timing_at_the_limits_is_accepted(tmp_path: Path, timing: dict[str, int]) -> None:
    """A grace or probation equal to the heartbeat, no cooldown or window, a day's heartbeat."""
    config = parse_config(demo_config(tmp_path, **timing), source="gateway.toml")
    assert config.sites[0].pools[0].heartbeat_seconds == timing.get("heartbeat_seconds", 60)


async def test_admin_api_refuses_a_pool_whose_grace_is_shorter_than_its_heartbeat(
    client: Any, admin_key: str
) -> None:
    """POST /v1/sites with such a pool is a 400 naming the key and the pool; nothing stored."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    site = {
        "key": "shop",
        "pools": [{"target": "+14155550160", "numbers": ["+14155550161"], "grace_seconds": 10}],
    }
    resp = await client.post("/v1/sites", json=site, headers=auth)
    assert resp.status == 400
    message = (await resp.json())["error"]["message"]
    assert "'pools[0].grace_seconds'" in message and "shop:+14155550160" in message
    assert (await client.get("/v1/sites/shop", headers=auth)).status == 404


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"grace_seconds": 0}, "grace_seconds"),
        ({"heartbeat_seconds": 60, "probation_seconds": 5}, "probation_seconds"),
        ({"cooldown_seconds": -300}, "cooldown_seconds"),
        ({"attribution_window_seconds": 10**18}, "attribution_window_seconds"),
        ({"grace_seconds": "900"}, "grace_seconds"),
        ({"share_called_numbers": "false"}, "share_called_numbers"),
    ],
)
def test_bad_pool_timing_in_the_store_is_one_line_naming_pool_and_key(
    tmp_path: Path, settings: dict[str, Any], key: str
) -> None:
    """A pool row in the store with timing that cannot work (an older version's, or edited by
    hand) stops `ctgw serve` and the CLI with one error line naming the pool and the key."""
    store = tmp_path / "ctgw.db"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[http]\nport = 0\n[store]\nurl = "sqlite:///{store}"\n[agi]\nenabled = false\n',
        encoding="utf-8",
    )
    ctgw = [sys.executable, "-m", "gateway"]
    assert subprocess.run([*ctgw, "db", "migrate", "--config", str(config)]).returncode == 0
    with sqlite3.connect(store) as conn:
        conn.execute(
            "INSERT INTO sites (key, created_at) VALUES ('shop', '2026-01-01T00:00:00.000000Z')"
        )
        conn.execute(
            "INSERT INTO pools (pool_id, site, target, settings, created_at) VALUES"
            " ('shop:+14155550160', 'shop', '+14155550160', ?, '2026-01-01T00:00:00.000000Z')",
            (json.dumps(settings),),
        )
    for command in (
        ["numbers", "add", "--site", "shop", "--target", "+14155550160", "+14155550161"],
        ["serve"],
    ):
        done = subprocess.run(
            [*ctgw, *command, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in done.stderr, done.stderr
        said = [line for line in done.stderr.splitlines() if not line.startswith("{")]
        assert len(said) == 1, done.stderr
        assert said[0].startswith("ctgw: error: store: pool shop:+14155550160: ")
        assert f"'{key}'" in said[0]
        assert done.returncode == 2
