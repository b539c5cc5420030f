"""The AMP Cache origins a site's AMP pages are served from."""

from __future__ import annotations

import pytest

from numberpool.amp_origins import amp_cache_origin, amp_origins

# The examples of the AMP Cache URL format (amp.dev and the AMP Toolbox's cache-url tests).
CASES = {
    "https://www.example.com": "www-example-com",
    "https://SOMETHING.COM": "something-com",
    "https://hello-world.com": "hello--world-com",
    "https://hello--world.com": "hello----world-com",
    "http://www.example.com:8080": "www-example-com",
    "https://en-us.example.com": "0-en--us-example-com-0",
    "https://xn--bcher-kva.ch": "xn--bcher-ch-65a",
    "https://bücher.ch": "xn--bcher-ch-65a",
    "https://點看.com": "xn---com-k47jg78q",
    "https://xn--4gbrim.xn----rmckbbajlc6dj7bxne2c.xn--wgbh1c": (
        "xn-------i5fvcbaopc6fkc0de0d9jybegt6cd"
    ),
    # No valid label: the base32 SHA-256 of the domain.
    "https://toplevelnohyphens": "qsgpfjzulvuaxb66z77vlhb5gu2irvcnyp6t67cz6tqo5ae6fysa",
    "https://no-dot-domain": "4lxc7wqq7b25walg4rdiil62veijrmqui5z3ept2lyfqqwpowryq",
    "https://itwasadarkandstormynight.therainfellintorrents.exceptatoccasionalintervalswhen"
    "itwascheckedby.aviolentgustofwindwhichsweptupthestreets.com": (
        "dgz4cnrxufaulnwku4ow5biptyqnenjievjht56hd7wqinbdbteq"
    ),
    "https://hello.xn--4gbrim.xn----rmckbbajlc6dj7bxne2c.xn--wgbh1c": (
        "a6h5moukddengbsjm77rvbosevwuduec2blkjva4223o4bgafgla"
    ),
}


@pytest.mark.parametrize(("origin", "subdomain"), CASES.items())
def test_cache_origin_follows_the_amp_cache_url_format(origin: str, subdomain: str) -> None:
    """A publisher origin maps to the AMP Cache subdomain the AMP docs give for it."""
    assert amp_cache_origin(origin) == f"https://{subdomain}.cdn.ampproject.org"


def test_a_site_allows_its_origins_their_cache_origins_and_the_cache() -> None:
    """AMP requests may come from the allowed origins, their cache origins, and the cache."""
    allowed = amp_origins(["https://www.demo-plumbing.example", "not a url"])
    assert allowed == {
        "https://www.demo-plumbing.example",
        "https://www-demo--plumbing-example.cdn.ampproject.org",
        "https://cdn.ampproject.org",
        "not a url",  # listed by the site, so it still matches itself only
    }
    assert "https://www-demo-plumbing-example.cdn.ampproject.org" not in allowed
