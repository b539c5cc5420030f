"""Whisper: what Asterisk spells to the agent (and only the agent) before the call is connected.

The text is made from the call's label (source and campaign) and holds letters, digits and
single spaces only, at most WHISPER_MAX_CHARS: it reaches the dialplan (SayAlpha) through the
AGI variable CTGW_WHISPER, so nothing a visitor sent can change what the dialplan runs.
"""

from __future__ import annotations

import re

__all__ = ["WHISPER_MAX_CHARS", "whisper_for", "whisper_text"]

# SayAlpha spells letter by letter (about half a second each) while the caller hears ringing.
WHISPER_MAX_CHARS = 16
_NOT_SPOKEN = re.compile(r"[^A-Za-z0-9]+")


def whisper_text(label: str) -> str:
    """The whole words of `label` (letters and digits) that fit in 16 characters; a first word
    longer than that is cut; '' when nothing is left."""
    words = _NOT_SPOKEN.sub(" ", label).split()
    if not words:
        return ""
    text = words[0][:WHISPER_MAX_CHARS]
    for word in words[1:]:
        if len(text) + 1 + len(word) > WHISPER_MAX_CHARS:
            break
        text = f"{text} {word}"
    return text


def whisper_for(enabled: bool, label: str) -> str:
    """The whisper a site's call gets: its label's text when the site has whisper on, else ''."""
    return whisper_text(label) if enabled else ""
