"""Secrets kept out of logs and error messages: the password in a store URL."""

from __future__ import annotations

import re

__all__ = ["redact_url"]

# `password=...` (also `sslpassword=`) in a URL's query or a libpq keyword string.
_PASSWORD_PARAM = re.compile(r"(?i)(\b[a-z_]*password=)[^&\s]*")


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
