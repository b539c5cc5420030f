"""A call report as the file a download or `ctgw report calls` gives: JSON, CSV or XLSX."""

from __future__ import annotations

import json

from reports.call_report import ReportData, ReportSpec, report_json, report_tables
from reports.tables import csv_text
from reports.xlsx import xlsx_bytes

__all__ = ["FORMATS", "report_file"]

FORMATS = ("json", "csv", "xlsx")


def report_file(data: ReportData, spec: ReportSpec, fmt: str) -> bytes:
    """The report's file body in `fmt` (json, csv or xlsx)."""
    if fmt == "xlsx":
        return xlsx_bytes(report_tables(data, spec))
    if fmt == "csv":
        return csv_text(report_tables(data, spec)).encode("utf-8")
    if fmt == "json":
        return json.dumps(report_json(data, spec), ensure_ascii=False).encode("utf-8")
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
