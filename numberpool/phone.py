"""Phone numbers at the edge: everything stored is E.164; display formats per region."""

from __future__ import annotations

import phonenumbers

__all__ = ["InvalidNumber", "display", "normalise"]

_MAX_INPUT = 40


class InvalidNumber(ValueError):
    """A phone number that cannot be understood; the message says why."""


def normalise(text: str, default_region: str = "US") -> str:
    """Return `text` as E.164, reading national formats in `default_region`."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidNumber("no phone number given")
    if len(text) > _MAX_INPUT:
        raise InvalidNumber(f"phone number longer than {_MAX_INPUT} characters")
    cleaned = text.strip()
    # Carriers send international numbers without '+' (e.g. 14155550123): try that reading too.
    candidates = [cleaned]
    if cleaned.isdigit() and len(cleaned) > 10:
        candidates.append("+" + cleaned)
    reason = "not a phone number"
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException as exc:
            reason = str(exc.args[0]) if exc.args else reason
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        reason = f"{text!r} is not a valid number for its region"
    raise InvalidNumber(f"{text!r}: {reason}" if not reason.startswith(repr(text)) else reason)


def display(e164: str) -> str:
    """Format an E.164 number the way people in its own country write it (a site's visitors
    are mostly local: (415) 555-0101 in the US, 020 7946 0001 in the UK)."""
    parsed = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
