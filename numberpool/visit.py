"""The visit context a session carries: landing page, referrer, UTM fields and click ids."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

__all__ = ["CLICK_IDS", "UTM_FIELDS", "VisitContext", "visit_from_url"]

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
            host = urlsplit(self.referrer).hostname or ""
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
    parts = urlsplit(url)
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
