"""Text from outside read at the HTTP edge, made fit to store where the sender cannot fix it."""

from __future__ import annotations

import re

from aiohttp import web

__all__ = ["header_text", "query_text", "storable_text"]

# NUL, and lone surrogates: aiohttp decodes header bytes that are not UTF-8 as surrogates
# (surrogateescape), and SQLite cannot encode them (one such header failed a whole batch).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str, max_len: int) -> str:
    """`text` cut to `max_len` characters, each NUL or lone surrogate replaced by U+FFFD."""
    text = text[:max_len]
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def header_text(request: web.Request, name: str, max_len: int) -> str:
    """A request header as storable text ('' when absent): a visitor cannot fix its browser."""
    return storable_text(request.headers.get(name, ""), max_len)


def query_text(request: web.Request, name: str, max_len: int) -> str:
    """A query parameter as storable text ('' when absent)."""
    return storable_text(request.query.get(name, ""), max_len)
