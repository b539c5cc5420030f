"""Report tables and their CSV form: the spreadsheet-safe CSV of the calls download (a byte
order mark, CRLF lines, text that would start a formula quoted), and the download file names."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reports.call_export import CHUNK_CHARS, safe_cell, spreadsheet_csv

__all__ = ["Table", "cell", "csv_chunks", "csv_text", "file_name"]

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Table:
    """One sheet of a report: a name, column names and rows of plain values."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def cell(value: Any) -> Any:
    """A value as a CSV cell: text that a spreadsheet would run as a formula is quoted, as in
    the calls download; numbers stay numbers, None is empty."""
    if isinstance(value, float):
        return round(value, 4)
    return safe_cell(value)


def csv_chunks(tables: Sequence[Table], chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """The tables as one CSV text in chunks, a blank line and the table's name between them."""
    return spreadsheet_csv(_rows(tables), chunk_chars)


def _rows(tables: Sequence[Table]) -> Iterator[Sequence[Any]]:
    for i, table in enumerate(tables):
        if len(tables) > 1:
            if i:
                yield ()
            yield (cell(table.name),)
        yield [cell(c) for c in table.columns]
        for row in table.rows:
            yield [cell(v) for v in row]


def csv_text(tables: Sequence[Table]) -> str:
    return "".join(csv_chunks(tables))


def file_name(report: str, site: str, since: str, until: str, *filters: str, ext: str) -> str:
    """A download's file name carrying its filters, e.g.
    calls-by-campaign_demo_2026-09-01_2026-11-30_last-touch.xlsx (safe in any file system)."""
    parts = [report, site, since, until, *(f for f in filters if f)]
    name = "_".join(_UNSAFE_NAME.sub("-", p).strip("-") or "-" for p in parts)
    return f"{name[:180]}.{ext}"
