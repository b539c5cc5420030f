"""The origins an AMP page of a site is served from: its own, and the Google AMP Cache's."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["AMP_CACHE", "amp_cache_origin", "amp_origins"]

AMP_CACHE = "https://cdn.ampproject.org"
_MAX_LABEL = 63


# Letters written left to right, and right to left (the ranges the AMP Cache checks): one
# label may not mix them.
_LTR = re.compile(
    "[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02b8\u0300-\u0590\u0800-\u1fff"
    "\u200e\u2c00-\ufb1c\ufe00-\ufe6f\ufefd-\uffff]"
)
_RTL = re.compile("[\u0591-\u06ef\u06fa-\u07ff\u200f\ufb1d-\ufdff\ufe70-\ufefc]")


def _to_unicode(domain: str) -> str:
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


def _to_ascii_label(label: str) -> str:
    if label.isascii():
        return label
    return "xn--" + label.encode("punycode").decode("ascii")


def _hyphens_at_3_and_4(label: str) -> bool:
    # Reserved for encodings like punycode's "xn--": a label may not have them otherwise.
    return label[2:4] == "--" and not label.startswith("xn")


def _cache_subdomain(domain: str) -> str:
    """The AMP Cache's subdomain for a publisher domain (in punycode): dashes doubled and dots
    made dashes, or the base32 SHA-256 of the domain when that gives no valid label (amp.dev,
    "AMP Cache URL Format and Request Handling")."""
    unicode = _to_unicode(domain)
    mixed = _LTR.search(unicode) is not None and _RTL.search(unicode) is not None
    if len(domain) <= _MAX_LABEL and "." in domain and not mixed:
        if not _hyphens_at_3_and_4(domain):
            readable = _to_ascii_label(unicode.replace("-", "--").replace(".", "-")).lower()
            if len(readable) <= _MAX_LABEL:
                return f"0-{readable}-0" if _hyphens_at_3_and_4(readable) else readable
    digest = hashlib.sha256(domain.encode("ascii")).digest()
    return base64.b32encode(digest).decode("ascii").lower().rstrip("=")


def amp_cache_origin(origin: str) -> str | None:
    """The Google AMP Cache origin that serves the AMP pages of `origin`; None for no host."""
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        domain = host.rstrip(".").encode("idna").decode("ascii")  # the punycode view
    except UnicodeError:
        return None
    return f"https://{_cache_subdomain(domain)}.cdn.ampproject.org"


def amp_origins(allowed: Iterable[str]) -> frozenset[str]:
    """The origins AMP requests of a site may come from: its allowed origins, their AMP Cache
    origins, and the AMP Cache itself."""
    origins = set(allowed)
    origins.update(o for o in map(amp_cache_origin, list(origins)) if o is not None)
    origins.add(AMP_CACHE)
    return frozenset(origins)
