"""Which client a request counts against: the TCP peer, or what trusted proxies say."""

from __future__ import annotations

import ipaddress

from gateway.http.client_address import client_address
from gateway.leasing.client_limits import client_key

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    """X-Forwarded-For from a peer nobody trusts is ignored: anyone can write it."""
    assert client_address("203.0.113.7", ["198.51.100.1"], ()) == "203.0.113.7"
    assert client_address("203.0.113.7", ["198.51.100.1"], PROXIES) == "203.0.113.7"
    assert client_address("::ffff:203.0.113.7", [], PROXIES) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_client_is_the_address_it_saw() -> None:
    """Through trusted proxies, the client is the nearest X-Forwarded-For entry none of them
    is; what the client wrote itself further left never counts."""
    assert client_address("127.0.0.1", ["203.0.113.7"], PROXIES) == "203.0.113.7"
    # A proxy that appends: the client sent "198.51.100.1" itself.
    assert client_address("127.0.0.1", ["198.51.100.1, 203.0.113.7"], PROXIES) == "203.0.113.7"
    # Two proxies in a row, the headers split over two lines.
    assert (
        client_address("127.0.0.1", ["198.51.100.1, 203.0.113.7", "10.1.2.3"], PROXIES)
        == "203.0.113.7"
    )
    assert client_address("127.0.0.1", ["[2001:db8::5]:4711"], PROXIES) == "2001:db8::5"
    assert client_address("127.0.0.1", ["203.0.113.7:4711"], PROXIES) == "203.0.113.7"


def test_unreadable_or_missing_entries_stop_at_the_last_trusted_hop() -> None:
    """Garbage in X-Forwarded-For is not an address: the last proxy seen stands for it."""
    assert client_address("127.0.0.1", [], PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", ["unknown"], PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", ["203.0.113.7, 10.0.0.9, junk"], PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", ["junk, 10.0.0.9"], PROXIES) == "10.0.0.9"


def test_an_http_front_is_trusted_for_the_hop_it_appended() -> None:
    """A request an HTTP front passed on names the client the front saw, however the client
    dressed up its own X-Forwarded-For."""
    seen = ["198.51.100.1, 198.51.100.2, 203.0.113.7"]
    assert client_address("", seen, (), peer_trusted=True) == "203.0.113.7"
    assert client_address("", ["unknown"], (), peer_trusted=True) == ""


def test_ipv6_clients_count_by_their_64() -> None:
    """The addresses of one IPv6 /64 (one household or office) share a key; IPv4 keeps its own."""
    assert client_key("2001:db8:1:2::a") == client_key("2001:db8:1:2:ffff::1")
    assert client_key("2001:db8:1:2::a") != client_key("2001:db8:1:3::a")
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("") == ""
