"""The calls download: call records as CSV text, made piece by piece so it can be streamed."""

from __future__ import annotations

import csv
import functools
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from numberpool.calls import ATTRIBUTION_FIELDS, CallRecord
from numberpool.phone import display

__all__ = ["CHUNK_CHARS", "CSV_COLUMNS", "calls_csv", "csv_chunks", "safe_cell", "spreadsheet_csv"]

CSV_COLUMNS = (
    "call_id",
    "site",
    "started_at",
    "state",
    "dialed",
    "dialed_display",
    "caller",
    "caller_display",
    "caller_name",
    "agent",
    "ring_seconds",
    "talk_seconds",
    "first_time",
    "recording",
    *(f"attribution_{f}" for f in ATTRIBUTION_FIELDS),
    "direction",
)

# About this many characters a chunk: large enough that a chunk costs little to hand over,
# small enough that a few chunks waiting for a slow client hold little memory.
CHUNK_CHARS = 64 * 1024
# Numbers formatted once and kept: calls come from the same few lines and callers again.
_SHOWN_NUMBERS = 4096


def csv_chunks(calls: Iterable[CallRecord], chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """Calls as CSV with a header row, one call a line, attribution flattened, in chunks.

    Made to open right in a spreadsheet: a UTF-8 byte order mark (Excel reads UTF-8 only with
    it), and each number also in its national format (Excel turns `+442079460000` into
    4.42079E+11; `020 7946 0000` stays text). The chunks joined are the whole file.
    """
    shown = functools.lru_cache(maxsize=_SHOWN_NUMBERS)(_display)
    rows = itertools.chain((CSV_COLUMNS,), (_row(call, shown) for call in calls))
    return spreadsheet_csv(rows, chunk_chars)


def spreadsheet_csv(rows: Iterable[Sequence[Any]], chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """Rows as CSV a spreadsheet opens right (a byte order mark, CRLF lines), in chunks of
    about `chunk_chars`; the chunks joined are the whole file."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        if out.tell() >= chunk_chars:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue()


def calls_csv(calls: Iterable[CallRecord]) -> str:
    """The whole CSV file of `calls` as one text (small sets; downloads stream `csv_chunks`)."""
    return "".join(csv_chunks(calls))


def _row(call: CallRecord, shown: Callable[[str], str]) -> list[Any]:
    """The cells of one call, in `CSV_COLUMNS` order (csv writes None as '', others with str)."""
    attribution = call.attribution
    values = (
        call.call_id,
        call.site,
        call.started_at,
        call.state,
        call.dialed,
        shown(call.dialed),
        call.caller,
        shown(call.caller),
        call.caller_name,
        call.agent,
        call.ring_seconds,
        call.talk_seconds,
        call.first_time,
        call.recording,
        *[getattr(attribution, field) for field in ATTRIBUTION_FIELDS],
        call.direction,
    )
    # Only text can hold a formula: a number or a bool never reads as one (2.5M cells a
    # download, so the common case costs one check).
    return [safe_cell(value) for value in values]


# Spreadsheet apps run cells starting with these as formulas.
_FORMULA_STARTS = frozenset("=+-@\t\r")


def safe_cell(value: Any) -> Any:
    """A cell as a spreadsheet must get it: text that would start a formula quoted."""
    if value.__class__ is str and value[:1] in _FORMULA_STARTS:
        return _defused(value)
    return value


def _defused(text: str) -> str:
    """A cell that would start a formula, quoted so it shows as text; numbers stay numbers."""
    try:
        float(text)
    except ValueError:
        return "'" + text
    return text


def _display(number: Any) -> str:
    """A stored E.164 number as people in its country write it; '' when there is none."""
    if not isinstance(number, str) or not number:
        return ""
    try:
        return display(number)
    except Exception:
        # phonenumbers' NumberParseException (reports does not import phonenumbers): a number
        # it cannot read has no display form, and one odd row must not cut a download short.
        return ""
