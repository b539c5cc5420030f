"""The visit context a session carries: landing page, referrer, UTM fields and click ids."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import SplitResult, parse_qsl, urlsplit

__all__ = ["CLICK_IDS", "UTM_FIELDS", "VisitContext", "url_problem", "visit_from_url"]

# RFC 3986 appendix B: matches every string, so it splits what urlsplit refuses.
_URI_PARTS = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.S)

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_IDS = ("gclid", "gbraid", "wbraid", "fbclid", "msclkid", "bd_vid")


class VisitContext(NamedTuple):
    url: str = ""
    landing_page: str = ""
    referrer: str = ""
    user_agent: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_term: str = ""
    utm_content: str = ""
    gclid: str = ""
    gbraid: str = ""
    wbraid: str = ""
    fbclid: str = ""
    msclkid: str = ""
    bd_vid: str = ""
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """The first value of URL parameter `name`, or None when absent."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def as_dict(self) -> dict[str, str]:
        """The context's fields, without the raw parameter list."""
        fields = self._asdict()
        del fields["params"]
        return fields

    @property
    def source(self) -> str:
        """utm_source, else a source implied by the click id or the referrer host."""
        if self.utm_source:
            return self.utm_source
        implied = {
            "gclid": "google",
            "gbraid": "google",
            "wbraid": "google",
            "fbclid": "facebook",
            "msclkid": "bing",
            "bd_vid": "baidu",
        }
        for click_id, source in implied.items():
            if getattr(self, click_id):
                return source
        if self.referrer:
            host = _split(self.referrer).hostname or ""
            return host.removeprefix("www.")
        return "(direct)"

    @property
    def medium(self) -> str:
        """utm_medium, else cpc for ad clicks, referral for referrers, none for direct."""
        if self.utm_medium:
            return self.utm_medium
        if any(getattr(self, c) for c in CLICK_IDS):
            return "cpc"
        return "referral" if self.referrer else "(none)"


def visit_from_url(url: str, referrer: str = "", user_agent: str = "") -> VisitContext:
    """Read UTM fields and click ids from `url`; the landing page is the URL without its query."""
    parts = _split(url)
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    found: dict[str, str] = {}
    for key, value in params:
        if key in UTM_FIELDS or key in CLICK_IDS:
            found.setdefault(key, value)
    landing = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
    return VisitContext(
        url=url,
        landing_page=landing,
        referrer=referrer,
        user_agent=user_agent,
        params=params,
        **found,
    )


def url_problem(url: str) -> str | None:
    """Why `url` cannot be read as a URL (a broken IPv6 host, a host that NFKC changes), or
    None when it can; for the edge, which refuses such URLs instead of storing them."""
    try:
        _ = urlsplit(url).hostname  # the check is whether reading it raises
    except ValueError as exc:
        return str(exc)
    return None


def _split(url: str) -> SplitResult:
    """`url` in its parts, for any text: a URL that urlsplit refuses is split by the RFC 3986
    pattern instead, so a stored visit with a broken referrer still has a source and a call on
    its number still gets a route."""
    try:
        return urlsplit(url)
    except ValueError:
        match = _URI_PARTS.match(url)
        assert match is not None  # the pattern matches every string
        scheme, netloc, path, query, fragment = match.groups(default="")
        return SplitResult(scheme.lower(), netloc, path, query, fragment)
