"""Where webhooks may connect (SSRF), how deliveries are signed, what the config accepts."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.config import ConfigError, parse_config
from gateway.webhooks.address_guard import address_problem, literal_problem
from gateway.webhooks.signing import delivery_headers, verify

LOCAL = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.9", "private"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert address_problem(address, ()) == f"{ipaddress.ip_address(address)}, a {kind} address"


def test_public_and_allowed_addresses_pass() -> None:
    assert address_problem("93.184.215.14", ()) is None
    assert address_problem("2606:4700::1111", ()) is None
    assert address_problem("127.0.0.1", LOCAL) is None
    assert address_problem("10.0.0.1", LOCAL) is not None
    assert literal_problem("example.com", ()) is None  # a name: the resolver decides
    assert "loopback" in (literal_problem("[::1]", ()) or "")


def test_a_signature_verifies_only_with_its_secret_body_and_time() -> None:
    body = b'{"version":1}'
    header = delivery_headers("s" * 20, 1_000_000, body, "evt_1_abc", "call.started")
    signature = header["Ctgw-Signature"]
    assert signature.startswith("t=1000000,v1=")
    assert verify("s" * 20, signature, body, now=1_000_010)
    assert not verify("t" * 20, signature, body, now=1_000_010)
    assert not verify("s" * 20, signature, body + b" ", now=1_000_010)
    assert not verify("s" * 20, signature, body, now=1_000_000 + 301)
    assert header["Ctgw-Event-Id"] == header["Idempotency-Key"] == "evt_1_abc"


@pytest.mark.parametrize(
    ("hook", "webhooks", "message"),
    [
        ({"url": "ftp://x/", "secret": "s" * 16}, {}, "http:// or https://"),
        ({"url": "https://u:p@x/", "secret": "s" * 16}, {}, "user name"),
        ({"url": "https://x/", "secret": "short"}, {}, "at least 16"),
        ({"url": "https://x/", "secret": "s" * 16, "events": ["call.nope"]}, {}, "unknown event"),
        ({"url": "https://x/", "secret": "s" * 16}, {"allow_private_networks": ["lan"]}, "network"),
        ({"url": "https://x/", "secret": "s" * 16}, {"concurrency": 0}, "at least 1"),
    ],
)
def test_the_config_refuses_unusable_webhooks(hook: dict, webhooks: dict, message: str) -> None:
    raw = {"webhooks": webhooks, "sites": [{"key": "a", "webhooks": [hook]}]}
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, source="t.toml")
