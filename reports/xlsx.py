"""Report tables as an XLSX workbook written with the standard library (zipfile and XML text).

Numbers are numeric cells, days are dates, and every text is an inline string: a cell holds a
formula only in an <f> element, which this writer never makes, so visitor-sent text such as
`=HYPERLINK(...)` stays text in any spreadsheet app."""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from reports.tables import Table

__all__ = ["XLSX_TYPE", "xlsx_bytes"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Characters XML 1.0 cannot hold at all (and lone surrogates, which have no UTF-8 form).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_CELL_CHARS = 32767  # Excel's limit for one cell
_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")
# Style ids in styles.xml: 0 plain, 1 bold (the header row), 2 a date.
_BOLD, _DATE = 1, 2
_EPOCH = date(1899, 12, 30)  # day 0 of the 1900 date system, past Excel's 1900 leap-year bug
# Fixed member times: the same report makes the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)

_STYLES = (
    f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    "</cellStyles></styleSheet>"
)


def _column(index: int) -> str:
    """Spreadsheet column letters of a 0-based index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _text_cell(ref: str, text: str, style: int = 0) -> str:
    text = _NOT_XML.sub("\ufffd", text[:_MAX_CELL_CHARS])
    attrs = f' s="{style}"' if style else ""
    return (
        f'<c r="{ref}" t="inlineStr"{attrs}><is><t xml:space="preserve">{escape(text)}</t></is></c>'
    )


def _cell(ref: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return _text_cell(ref, "")
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    if isinstance(value, date) and not isinstance(value, datetime):
        return f'<c r="{ref}" s="{_DATE}"><v>{(value - _EPOCH).days}</v></c>'
    return _text_cell(ref, str(value))


def _sheet(table: Table) -> str:
    rows = [
        '<row r="1">'
        + "".join(_text_cell(f"{_column(i)}1", str(c), _BOLD) for i, c in enumerate(table.columns))
        + "</row>"
    ]
    for n, row in enumerate(table.rows, start=2):
        cells = "".join(_cell(f"{_column(i)}{n}", v) for i, v in enumerate(row))
        rows.append(f'<row r="{n}">{cells}</row>')
    frozen = (
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2"'
        ' activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
    )
    return (
        f'{_HEAD}<worksheet xmlns="{_MAIN}">{frozen}<sheetData>{"".join(rows)}</sheetData>'
        "</worksheet>"
    )


def _sheet_names(tables: Sequence[Table]) -> list[str]:
    """Names a spreadsheet accepts: at most 31 characters, none of []:*?/\\, all different."""
    names: list[str] = []
    for i, table in enumerate(tables, start=1):
        name = _NOT_XML.sub("", _SHEET_NAME.sub("-", table.name)).strip("'")[:31] or f"Sheet{i}"
        if name.lower() in (n.lower() for n in names):
            name = f"{name[:27]} ({i})"
        names.append(name)
    return names


def xlsx_bytes(tables: Sequence[Table]) -> bytes:
    """The workbook of `tables`, one sheet each, the first row of each the column names."""
    if not tables:
        raise ValueError("a workbook needs at least one table")
    names = _sheet_names(tables)
    sheets = "".join(
        f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, start=1)
    )
    workbook = (
        f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{sheets}</sheets></workbook>'
    )
    sheet_type = f"{_REL}/worksheet"
    links = "".join(
        f'<Relationship Id="rId{i}" Type="{sheet_type}" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(tables) + 1)
    )
    styles_id = len(tables) + 1
    links += f'<Relationship Id="rId{styles_id}" Type="{_REL}/styles" Target="styles.xml"/>'
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ct}.worksheet+xml"/>'
        for i in range(1, len(tables) + 1)
    )
    types = (
        f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{ct}.styles+xml"/>{overrides}</Types>'
    )
    package_rels = (
        f'{_HEAD}<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
        f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    parts = {
        "[Content_Types].xml": types,
        "_rels/.rels": package_rels,
        "xl/workbook.xml": workbook,
        "xl/_rels/workbook.xml.rels": f'{_HEAD}<Relationships xmlns="{_PKG_REL}">{links}'
        "</Relationships>",
        "xl/styles.xml": _STYLES,
        **{f"xl/worksheets/sheet{i}.xml": _sheet(t) for i, t in enumerate(tables, start=1)},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(
                zipfile.ZipInfo(name, _ZIP_TIME), text.encode("utf-8"), zipfile.ZIP_DEFLATED
            )
    return out.getvalue()
