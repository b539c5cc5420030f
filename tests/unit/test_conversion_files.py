"""The conversion import files, field by field against the platforms' published formats.

The expected columns are written out here, not imported from the code, with where each was
found (docs/conversions.md quotes the same sources)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from reports.conversion_files import ConversionLabel, conversion_file, label_problem
from reports.conversions import Conversion

# Google Ads, "Import conversions from ad clicks into Google Ads" (support.google.com/google-ads/
# answer/7014069) and its template: a first row `Parameters:TimeZone=<zone>` (a time zone ID
# of developers.google.com/google-ads/api/data/codes-formats#timezone_ids, or a GMT offset
# like -0500), then these columns. Times written "yyyy-MM-dd HH:mm:ss" in that zone.
GOOGLE_CLICK_PUBLISHED = [
    "Google Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
]
# iOS clicks (docs/conversions.md): the template's "Google Click ID" column stays (Google Ads
# Help, answer 7014069: "Make sure that you don't remove the column that begins with 'Google
# Click ID', or your import will fail"), then GBRAID and WBRAID, the names every public
# importer found uses; Google's own page naming these two columns was not found.
GOOGLE_IOS_CLICK_LAYOUT = [
    "Google Click ID",
    "GBRAID",
    "WBRAID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
]
# Google Ads, "Import phone call conversions" template: the caller id (E.164 with '+', as the
# API's CallConversion.caller_id says) and the call's start, then the same conversion fields.
GOOGLE_CALL_PUBLISHED = [
    "Caller's Phone Number",
    "Call Start Time",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
]
# Microsoft Advertising, "Offline Conversion Record - Bulk" (learn.microsoft.com/advertising/
# bulk-service/offline-conversion): its Bulk CSV example, header, format version and a record
# "Offline Conversion,,,,ClientIdGoesHere,,USD,My Goal Name,4/1/2020 6:50:54 PM,10,f894...".
MICROSOFT_PUBLISHED = [
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
]
MICROSOFT_VERSION_ROW = ["Format Version", "", "", "", "", "6.0", "", "", "", "", ""]

START = datetime(2026, 3, 9, 3, 59, 0, tzinfo=UTC)  # 23:59 on March 8th in New York
END = START + timedelta(minutes=3, seconds=7)
LABEL = ConversionLabel("Qualified call", "49.90", "USD")


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _conv(platform: str, click_id: str, kind: str = "gclid") -> Conversion:
    return Conversion(platform, "call-1", kind, click_id, START, END, "+12025550001")


def test_google_click_file_matches_the_template_field_by_field() -> None:
    text = conversion_file(
        "google_ads", [_conv("google_ads", "Cj0KCQiA_x-1")], LABEL, "America/New_York"
    )
    rows = _rows(text)
    assert rows[0] == ["Parameters:TimeZone=America/New_York"]
    assert rows[1] == GOOGLE_CLICK_PUBLISHED
    record = dict(zip(rows[1], rows[2], strict=True))
    assert record == {
        "Google Click ID": "Cj0KCQiA_x-1",
        "Conversion Name": "Qualified call",
        "Conversion Time": "2026-03-09 00:02:07",  # END in New York: EDT since March 8th
        "Conversion Value": "49.90",
        "Conversion Currency": "USD",
    }
    assert len(rows) == 3
    assert text.endswith("\r\n")


@pytest.mark.parametrize(("kind", "column"), [("gbraid", "GBRAID"), ("wbraid", "WBRAID")])
def test_an_ios_click_id_file_keeps_the_google_click_id_column(kind: str, column: str) -> None:
    rows = _rows(
        conversion_file("google_ads", [_conv("google_ads", "0AAA", kind)], LABEL, "UTC", kind)
    )
    # Google's page: a file without its "Google Click ID" column fails to import.
    assert rows[1][0] == "Google Click ID"
    assert rows[1] == GOOGLE_IOS_CLICK_LAYOUT
    record = dict(zip(rows[1], rows[2], strict=True))
    assert record == {
        "Google Click ID": "",  # one id per row (the API's rule): only this row's own
        "GBRAID": "0AAA" if kind == "gbraid" else "",
        "WBRAID": "0AAA" if kind == "wbraid" else "",
        "Conversion Name": "Qualified call",
        "Conversion Time": "2026-03-09 04:02:07",
        "Conversion Value": "49.90",
        "Conversion Currency": "USD",
    }
    assert record[column] == "0AAA"


def test_a_click_file_is_asked_for_by_a_google_click_id_only() -> None:
    with pytest.raises(ValueError, match="msclkid"):
        conversion_file("google_ads", [], LABEL, "UTC", "msclkid")


def test_utc_is_written_as_a_gmt_offset_and_times_are_utc() -> None:
    rows = _rows(conversion_file("google_ads", [_conv("google_ads", "G")], LABEL, "UTC"))
    assert rows[0] == ["Parameters:TimeZone=+0000"]
    assert rows[2][2] == "2026-03-09 04:02:07"


def test_google_call_file_matches_the_template_field_by_field() -> None:
    row = _conv("google_ads_calls", "+12025550001", "caller")
    rows = _rows(conversion_file("google_ads_calls", [row], LABEL, "Europe/Paris"))
    assert rows[0] == ["Parameters:TimeZone=Europe/Paris"]
    assert rows[1] == GOOGLE_CALL_PUBLISHED
    record = dict(zip(rows[1], rows[2], strict=True))
    assert record == {
        "Caller's Phone Number": "+12025550001",
        "Call Start Time": "2026-03-09 04:59:00",  # START in Paris (CET, +01:00)
        "Conversion Name": "Qualified call",
        "Conversion Time": "2026-03-09 05:02:07",
        "Conversion Value": "49.90",
        "Conversion Currency": "USD",
    }


def test_microsoft_bulk_file_matches_the_published_example_field_by_field() -> None:
    rows = _rows(
        conversion_file(
            "microsoft_ads", [_conv("microsoft_ads", "f894f652ea33")], LABEL, "America/New_York"
        )
    )
    assert rows[0] == MICROSOFT_PUBLISHED
    assert rows[1] == MICROSOFT_VERSION_ROW
    record = dict(zip(rows[0], rows[2], strict=True))
    assert record == {
        "Type": "Offline Conversion",
        "Status": "",
        "Id": "",
        "Parent Id": "",
        "Client Id": "call-1",
        "Name": "",
        "Conversion Currency Code": "USD",
        "Conversion Name": "Qualified call",
        "Conversion Time": "3/9/2026 4:02:07 AM",  # UTC, in the example's form
        "Conversion Value": "49.90",
        "Microsoft Click Id": "f894f652ea33",
    }


def test_microsoft_times_use_a_twelve_hour_clock() -> None:
    noon = _conv("microsoft_ads", "m")._replace(at=datetime(2020, 4, 1, 18, 50, 54, tzinfo=UTC))
    rows = _rows(conversion_file("microsoft_ads", [noon], LABEL, "UTC"))
    assert rows[2][8] == "4/1/2020 6:50:54 PM"  # the published example's own time
    midnight = noon._replace(at=datetime(2020, 4, 1, 0, 5, 0, tzinfo=UTC))
    assert _rows(conversion_file("microsoft_ads", [midnight], LABEL, "UTC"))[2][8] == (
        "4/1/2020 12:05:00 AM"
    )


def test_an_empty_period_still_has_its_header_rows() -> None:
    assert _rows(conversion_file("google_ads", [], LABEL, "UTC")) == [
        ["Parameters:TimeZone=+0000"],
        GOOGLE_CLICK_PUBLISHED,
    ]
    assert _rows(conversion_file("microsoft_ads", [], LABEL, "UTC")) == [
        MICROSOFT_PUBLISHED,
        MICROSOFT_VERSION_ROW,
    ]


def test_a_conversion_name_with_a_comma_stays_one_field() -> None:
    label = ConversionLabel('Call, "qualified"', "0", "EUR")
    rows = _rows(conversion_file("google_ads", [_conv("google_ads", "G")], label, "UTC"))
    assert rows[2][1] == 'Call, "qualified"' and rows[2][4] == "EUR"


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        (ConversionLabel(""), "name"),
        (ConversionLabel("a\nb"), "name"),
        (ConversionLabel("x", "ten"), "value"),
        (ConversionLabel("x", "-1"), "value"),
        (ConversionLabel("x", "NaN"), "value"),
        (ConversionLabel("x", "1", "usd"), "currency"),
        (ConversionLabel("x", "1", "EURO"), "currency"),
    ],
)
def test_labels_a_platform_would_refuse_are_named(label: ConversionLabel, problem: str) -> None:
    found = label_problem(label)
    assert found is not None and found.startswith(problem)
    assert label_problem(ConversionLabel("Call", "49.90", "EUR")) is None
