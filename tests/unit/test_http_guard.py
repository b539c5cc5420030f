"""The HTTP guard's parts: client addresses, the open-files budget, log lines per interval."""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import sys

import pytest
from structlog.testing import capture_logs

from gateway.config import ConfigError, HttpSettings, parse_config
from gateway.http.guard import HttpGuard, connection_client


@pytest.mark.parametrize(
    ("peername", "client"),
    [
        (("203.0.113.7", 51000), "203.0.113.7"),
        (("::ffff:203.0.113.7", 51000, 0, 0), "203.0.113.7"),
        (("2001:db8:1:2::1", 51000, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::9", 443, 0, 0), "2001:db8:1:2::/64"),
        (("fe80::1%eth0", 51000, 0, 2), "fe80::/64"),
        ("", None),
        ("/run/ctgw/core.sock", None),
        (None, None),
    ],
)
def test_connections_count_against_their_address_or_ipv6_64(
    peername: object, client: object
) -> None:
    """IPv4 peers count by address, IPv6 by /64 (mapped IPv4 as IPv4), Unix sockets not at all."""
    assert connection_client(peername) == client


def test_the_connection_cap_is_lowered_to_fit_the_open_files_limit() -> None:
    """A cap the open-files limit cannot hold is lowered, with a warning that says what to do."""
    settings = HttpSettings(max_connections=10_000)
    with capture_logs() as logs:
        assert HttpGuard(settings, 1_048_576).max_connections == 10_000
        assert HttpGuard(settings, 20_000).max_connections == 10_000
        assert HttpGuard(settings, 8_192).max_connections == 8_192 - 2_048
        assert HttpGuard(settings, 1_024).max_connections == 512
    lowered = [line for line in logs if line["event"] == "http_max_connections_lowered"]
    assert [line["used"] for line in lowered] == [6_144, 512]
    assert "ulimit" in lowered[0]["hint"]


async def test_refusals_make_one_line_per_interval() -> None:
    """Many refusals make one line at once and one with the rest at the interval's end."""
    guard = HttpGuard(
        HttpSettings(max_connections=10, max_connections_per_client=2), 1_048_576, log_every=0.3
    )
    with capture_logs() as logs:
        assert guard.admit("198.51.100.1") and guard.admit("198.51.100.1")
        assert all(not guard.admit("198.51.100.1") for _ in range(50))
        assert guard.admit("198.51.100.2")  # another address is counted on its own
        guard.release("198.51.100.1")
        assert guard.admit("198.51.100.1")  # a closed connection frees its place
        for _ in range(100):
            if len(logs) == 2:
                break
            await asyncio.sleep(0.05)
    assert [(line["event"], line["count"]) for line in logs] == [
        ("http_connections_refused", 1),
        ("http_connections_refused", 49),
    ]
    assert logs[0]["reasons"] == {"max_connections_per_client": 1}
    assert logs[0]["client"] == "198.51.100.1" and logs[0]["limit"] == 2


def test_the_soft_open_files_limit_is_raised_to_the_hard_limit() -> None:
    """A serving process raises its soft open-files limit as far as the hard limit allows."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, want))

    code = (
        "import resource; from gateway.http.guard import raise_open_files_limit as r; "
        "print(r(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, preexec_fn=lower
    ).stdout.split()
    assert out == [str(want), str(want)]


def test_http_limits_are_configured_in_the_http_section() -> None:
    """The limits have defaults, take TOML and environment values, and refuse zero deadlines."""
    http = parse_config({}).http
    assert (http.header_timeout_seconds, http.body_timeout_seconds) == (10, 30)
    assert (http.max_connections, http.max_connections_per_client) == (10_000, 256)
    config = parse_config(
        {"http": {"header_timeout_seconds": 2, "max_connections_per_client": 0}},
        environ={"CTGW_HTTP_MAX_CONNECTIONS": "500"},
    )
    assert config.http.header_timeout_seconds == 2
    assert (config.http.max_connections, config.http.max_connections_per_client) == (500, 0)
    for key in ("header_timeout_seconds", "body_timeout_seconds", "keepalive_timeout_seconds"):
        with pytest.raises(ConfigError, match=re.escape(f"'http.{key}' must be at least 1")):
            parse_config({"http": {key: 0}})
    with pytest.raises(ConfigError, match=re.escape("'http.max_connections' must be at least 1")):
        parse_config({"http": {"max_connections": 0}})
