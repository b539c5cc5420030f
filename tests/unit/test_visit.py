"""Reading a visit from its URL and referrer never fails, whatever text they hold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numberpool.visit import url_problem, visit_from_url

# Every character, lone surrogates included (they arrive from headers aiohttp could not decode).
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=30)
URL_PIECES = st.sampled_from(
    [
        "http://",
        "https://",
        "//",
        "[",
        "]",
        "::1",
        "[::1]",
        "[v1.x]",
        "\u2100",
        "\uff03",
        "@",
        ":",
        ":99999",
        "%",
        "%zz",
        "?",
        "#",
        "&",
        "=",
        "utm_source=",
        "gclid=",
        "www.",
        "example.com",
        "/",
        "\x00",
        "\udcff",
        " ",
        "\t\n",
    ]
)
URL_LIKE = st.lists(URL_PIECES | ANY_TEXT, max_size=10).map("".join)


@settings(max_examples=300, deadline=None)
@given(url=URL_LIKE, referrer=URL_LIKE, user_agent=ANY_TEXT)
def test_any_url_and_referrer_make_a_visit_with_a_source_and_medium(url, referrer, user_agent):
    """visit_from_url, .source and .medium return text for any URL and referrer."""
    visit = visit_from_url(url, referrer, user_agent)
    assert isinstance(visit.source, str) and isinstance(visit.medium, str)
    assert isinstance(visit.landing_page, str)
    assert visit.url == url and visit.referrer == referrer
    problem = url_problem(url)
    assert problem is None or (isinstance(problem, str) and problem)


@settings(max_examples=200, deadline=None)
@given(text=ANY_TEXT)
def test_any_text_as_a_referrer_has_a_source(text):
    """Arbitrary text as a referrer gives a source and a medium, never an exception."""
    visit = visit_from_url("https://x.example/", text)
    assert isinstance(visit.source, str) and visit.medium in ("referral", "(none)")


@pytest.mark.parametrize(
    ("referrer", "source"),
    [
        ("http://[bad", "bad"),
        ("http://[::1/path", "::1"),
        ("https://www.a\u2100/", "a\u2100"),
        ("https://www.google.com/search?q=x", "google.com"),
    ],
)
def test_a_referrer_python_cannot_split_still_names_its_host(referrer, source) -> None:
    """A referrer urlsplit refuses (broken IPv6, NFKC host) still gives its host as source."""
    visit = visit_from_url("https://x.example/", referrer)
    assert visit.source == source and visit.medium == "referral"
    assert url_problem(referrer) is not None or "google" in referrer


def test_a_url_python_cannot_split_keeps_its_campaign_tags() -> None:
    """UTM tags and click ids are read from a URL whose host urlsplit refuses."""
    visit = visit_from_url("http://[::1/landing?utm_source=news&gclid=G1#top")
    assert visit.utm_source == "news" and visit.gclid == "G1"
    assert visit.landing_page == "http://[::1/landing"
    assert visit.source == "news" and visit.medium == "cpc"


@pytest.mark.parametrize(
    "url", ["http://[::1/", "http://a\u2100/", "http://[bad", "https://[zz]/", "http://]/"]
)
def test_url_problem_names_what_urlsplit_refuses(url) -> None:
    """url_problem says why a URL cannot be read; a good URL has no problem."""
    assert url_problem(url)
    assert url_problem("https://www.demo-plumbing.example/?utm_source=x") is None
    assert url_problem("") is None
