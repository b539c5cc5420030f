"""The upload files the ad platforms import conversions from: Google Ads click conversions,
Google Ads call conversions and Microsoft Advertising offline conversions (bulk file). The
column lists and time formats, and where they were found, are in docs/conversions.md."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from reports.conversions import GOOGLE_CLICK_IDS, Conversion
from reports.period import zone

__all__ = [
    "FILE_PLATFORMS",
    "GOOGLE_CALL_COLUMNS",
    "GOOGLE_CLICK_COLUMNS",
    "GOOGLE_IOS_CLICK_COLUMNS",
    "MICROSOFT_COLUMNS",
    "ConversionLabel",
    "conversion_file",
    "google_time_zone",
    "label_problem",
]

GOOGLE_CLICK_COLUMNS = (
    "Google Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
# An iOS click id file keeps the "Google Click ID" column (Google's page: removing it fails
# the import) and puts the gbraid or wbraid in a column of its own; one id per row. The names
# GBRAID / WBRAID are what public importers write: no Google page naming them was found.
GOOGLE_IOS_CLICK_COLUMNS = ("Google Click ID", "GBRAID", "WBRAID", *GOOGLE_CLICK_COLUMNS[1:])
GOOGLE_CALL_COLUMNS = (
    "Caller's Phone Number",
    "Call Start Time",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
# Microsoft Advertising's bulk file: a header row, a format version row, one row per record.
MICROSOFT_COLUMNS = (
    "Type",
    "Status",
    "Id",
    "Parent Id",
    "Client Id",
    "Name",
    "Conversion Currency Code",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Microsoft Click Id",
)
_MICROSOFT_FORMAT_VERSION = "6.0"
# The API's platform names -> the file each is downloaded as.
FILE_PLATFORMS = {
    "google_ads": "google-ads",
    "google_ads_calls": "google-ads-calls",
    "microsoft_ads": "microsoft-ads",
}
_GOOGLE_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class ConversionLabel:
    """What a site names its conversions on one platform, and what they are worth."""

    name: str
    value: str = "0"  # a decimal number as text, e.g. "49.90"
    currency: str = "USD"  # ISO 4217


def label_problem(label: ConversionLabel) -> str | None:
    """Why the platform would refuse rows with `label` (the key and the reason), or None."""
    if not label.name.strip() or any(c in label.name for c in "\r\n"):
        return "name: needs a conversion name on one line, as the platform spells it"
    try:
        value = Decimal(label.value)
    except InvalidOperation:
        return f"value: {label.value!r} is not a number like 49.90"
    if not value.is_finite() or value < 0:
        return f"value: {label.value!r} must be a number of zero or more"
    if len(label.currency) != 3 or not label.currency.isascii() or not label.currency.isupper():
        return f"currency: {label.currency!r} is not an ISO 4217 code like USD"
    return None


def google_time_zone(tz: str) -> str:
    """The `Parameters:TimeZone=` value of a site's zone: the IANA name, or +0000 for UTC
    (a fixed offset would be wrong on one side of a daylight-saving change)."""
    return "+0000" if tz in ("UTC", "Etc/UTC", "GMT") else tz


def conversion_file(
    platform: str,
    rows: Sequence[Conversion],
    label: ConversionLabel,
    tz: str,
    click_id: str = "gclid",
) -> str:
    """The import file of `platform` for `rows`, times in the site's zone `tz` (Google) or
    UTC (Microsoft's bulk file)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if platform == "microsoft_ads":
        writer.writerow(MICROSOFT_COLUMNS)
        version = ["Format Version", "", "", "", "", _MICROSOFT_FORMAT_VERSION]
        writer.writerow(version + [""] * (len(MICROSOFT_COLUMNS) - len(version)))
        for row in rows:
            writer.writerow(_microsoft_row(row, label))
        return out.getvalue()
    if platform not in ("google_ads", "google_ads_calls"):
        raise ValueError(f"no file for platform {platform!r}")
    place = zone(tz)
    writer.writerow([f"Parameters:TimeZone={google_time_zone(tz)}"])
    if platform == "google_ads_calls":
        writer.writerow(GOOGLE_CALL_COLUMNS)
        for row in rows:
            start = row.call_start.astimezone(place).strftime(_GOOGLE_TIME)
            writer.writerow([row.click_id, start, *_google_tail(row, label, tz)])
        return out.getvalue()
    if click_id not in GOOGLE_CLICK_IDS:
        raise ValueError(f"no Google click id column for {click_id!r}")
    writer.writerow(GOOGLE_CLICK_COLUMNS if click_id == "gclid" else GOOGLE_IOS_CLICK_COLUMNS)
    for row in rows:
        writer.writerow([*_google_ids(row, click_id), *_google_tail(row, label, tz)])
    return out.getvalue()


def _google_ids(row: Conversion, click_id: str) -> list[str]:
    """The id cells of a click row: the gclid alone, or an empty Google Click ID then the
    gbraid and wbraid columns with this row's id in its own."""
    if click_id == "gclid":
        return [row.click_id]
    return [row.click_id if kind == click_id else "" for kind in GOOGLE_CLICK_IDS]


def _google_tail(row: Conversion, label: ConversionLabel, tz: str) -> list[str]:
    at = row.at.astimezone(zone(tz)).strftime(_GOOGLE_TIME)
    return [label.name, at, label.value, label.currency]


def _microsoft_row(row: Conversion, label: ConversionLabel) -> list[str]:
    # The call id goes in Client Id, the record's own reference, so an import error report
    # leads back to the call.
    at = _microsoft_time(row.at)
    return [
        "Offline Conversion",
        "",
        "",
        "",
        row.call_id,
        "",
        label.currency,
        label.name,
        at,
        label.value,
        row.click_id,
    ]


def _microsoft_time(moment: datetime) -> str:
    """UTC as the bulk file's example writes times: 4/1/2020 6:50:54 PM."""
    utc = moment.astimezone(UTC)
    hour = utc.hour % 12 or 12
    half = "AM" if utc.hour < 12 else "PM"
    return f"{utc.month}/{utc.day}/{utc.year} {hour}:{utc:%M:%S} {half}"
