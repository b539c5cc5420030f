"""The caller as a call's record keeps it: the number as E.164 and the name as shown."""

from __future__ import annotations

from numberpool.phone import InvalidNumber, normalise

__all__ = ["caller_number", "clean_name"]

_MAX_NAME = 80


def caller_number(text: str, region: str) -> str:
    """The caller as E.164, or '' for anonymous or unreadable caller ids."""
    try:
        return normalise(text, region) if text else ""
    except InvalidNumber:
        return ""


def clean_name(text: str) -> str:
    """The caller name as stored: line breaks and tabs as spaces, other control characters
    removed, bounded length."""
    spaced = "".join(ch if ch.isprintable() else " " if ch in "\r\n\t" else "" for ch in text)
    return " ".join(spaced.split())[:_MAX_NAME]
