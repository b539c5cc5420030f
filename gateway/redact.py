"""Secrets kept out of logs and error messages: store URL passwords, session ids."""

from __future__ import annotations

import re

__all__ = ["redact_url", "session_ref"]

# `password=...` (also `sslpassword=`) in a URL's query or a libpq keyword string.
_PASSWORD_PARAM = re.compile(r"(?i)(\b[a-z_]*password=)[^&\s]*")
# How much of a session id a log line may show: its 12 time digits and 4 random ones, enough to
# find the session by hand, while the 64 random bits that make it unguessable stay out.
_SESSION_REF_CHARS = 16


def redact_url(url: str) -> str:
    """`url` with any password in it replaced by `***` (userinfo and `password=` parameters).

    The user part ends at the last '@', so an unencoded '@' in a password is hidden too; an
    '@' later in the URL may hide more than the password, never less.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        userinfo, at, host = rest.rpartition("@")
        if at and ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            rest = f"{user}:***@{host}"
        url = f"{scheme}://{rest}"
    return _PASSWORD_PARAM.sub(r"\1***", url)


def session_ref(session_id: str) -> str:
    """The loggable part of a session id (the whole id authorises heartbeats)."""
    return session_id[:_SESSION_REF_CHARS]
