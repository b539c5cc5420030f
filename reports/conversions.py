"""Which calls count as conversions for the ad platforms, and what each platform is sent of
them. Pure: the rows come from gateway/store/conversions.py, times are given."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple, TypeVar
from urllib.parse import urlencode

__all__ = [
    "BAIDU_MAX_BATCH",
    "BAIDU_MAX_URL",
    "GOOGLE_CALL_MIN_AGE",
    "GOOGLE_CLICK_IDS",
    "GOOGLE_CLICK_MIN_AGE",
    "MICROSOFT_CLICK_MIN_AGE",
    "MIN_AGE",
    "PLATFORMS",
    "CallFacts",
    "Conversion",
    "CountRule",
    "baidu_batches",
    "conversion_for",
    "too_recent",
    "why_not_counted",
]

# What a platform is sent a call as: a file row (the first three) or an upload callback.
PLATFORMS = ("google_ads", "google_ads_calls", "microsoft_ads", "baidu_ocpc")
# The click ids a Google Ads click conversion is matched by; a row carries exactly one.
GOOGLE_CLICK_IDS = ("gclid", "gbraid", "wbraid")
# Baidu's upload: "每次回传转化数据数组长度需小于100" (fewer than 100 per request) and a logidUrl
# of at most 1024 characters (docs/conversions.md, where it was found).
BAIDU_MAX_BATCH = 99
BAIDU_MAX_URL = 1024
# How old a call must be before Google Ads takes its conversion. Calls: "If you encounter a
# TOO_RECENT_CONVERSION_ACTION or TOO_RECENT_CALL ... wait 6 hours or 12 hours, respectively,
# before retrying the failed rows" (Google Ads API, "Upload call conversions",
# developers.google.com/google-ads/api/docs/conversions/upload-calls); the error's own text
# says 6 hours (ConversionUploadError.TOO_RECENT_CALL): the longer of the two is kept.
GOOGLE_CALL_MIN_AGE = timedelta(hours=12)
# Clicks: "The click associated with the given identifier or iOS URL parameter occurred less
# than 6 hours ago. Retry after 6 hours have passed" (ConversionUploadError.TOO_RECENT_EVENT).
# The click came before the call, so a call started 6 hours ago has a click at least as old.
GOOGLE_CLICK_MIN_AGE = timedelta(hours=6)
# Microsoft Advertising refuses no click as too recent (its offline conversion statuses list
# none: DailySummary, Campaign Management API), but advises "As a best practice after an ad
# click you should wait an hour before uploading offline conversions" ("Offline Conversion
# Record - Bulk", learn.microsoft.com/advertising/bulk-service/offline-conversion): kept.
MICROSOFT_CLICK_MIN_AGE = timedelta(hours=1)
# Per platform (Baidu's callbacks have none).
MIN_AGE = MappingProxyType(
    {
        "google_ads": GOOGLE_CLICK_MIN_AGE,
        "google_ads_calls": GOOGLE_CALL_MIN_AGE,
        "microsoft_ads": MICROSOFT_CLICK_MIN_AGE,
    }
)
# Click ids are URL-safe tokens; anything else (a visitor can put any text in a URL) is left
# out, so no file row can start a spreadsheet formula or break a column.
_CLICK_ID = re.compile(r"[A-Za-z0-9_-]{1,512}")


@dataclass(frozen=True)
class CountRule:
    """A site's rule of which finished calls count; every condition must hold."""

    answered: bool = True
    min_talk_seconds: float = 0.0
    first_time_only: bool = False
    exclude_spam: bool = True
    dispositions: tuple[str, ...] = ()  # empty: any disposition, or none


class CallFacts(NamedTuple):
    """What the rule and the platforms need of one stored call and the visit it came from."""

    call_id: str
    site: str
    caller: str
    started_at: datetime
    ended_at: datetime | None
    answered: bool
    talk_seconds: float | None
    first_time: bool
    spam: bool  # the call or its lead was marked spam
    test_call: bool
    inbound: bool
    disposition: str = ""
    gclid: str = ""
    gbraid: str = ""
    wbraid: str = ""
    msclkid: str = ""
    bd_vid: str = ""
    landing_url: str = ""  # the URL the visit began on, query included
    landing_page: str = ""  # the same without its query


class Conversion(NamedTuple):
    """One call as one platform is sent it."""

    platform: str
    call_id: str
    click_id_kind: str  # gclid, gbraid, wbraid, msclkid, bd_vid, or caller
    click_id: str
    call_start: datetime
    at: datetime  # the conversion time: when the call ended
    caller: str = ""
    logid_url: str = ""


def why_not_counted(rule: CountRule, call: CallFacts) -> str | None:
    """Why `call` does not count under `rule` (a short reason), or None when it counts."""
    if call.test_call:
        return "test call"
    if not call.inbound:
        return "outbound call"
    if call.ended_at is None:
        return "not ended"
    if rule.answered and not call.answered:
        return "not answered"
    if rule.min_talk_seconds > 0 and (call.talk_seconds or 0.0) < rule.min_talk_seconds:
        return "talk time too short"
    if rule.first_time_only and not call.first_time:
        return "repeat caller"
    if rule.exclude_spam and call.spam:
        return "spam"
    if rule.dispositions and call.disposition not in rule.dispositions:
        return "disposition not listed"
    return None


def conversion_for(
    platform: str, rule: CountRule, call: CallFacts, click_id: str = "gclid"
) -> Conversion | None:
    """The conversion `platform` is sent for `call`, or None when the call does not count or
    lacks what the platform matches it by. `click_id` picks the Google click id column."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    if why_not_counted(rule, call) is not None or call.ended_at is None:
        return None
    kind, value, url = _match(platform, call, click_id)
    if not value:
        return None
    return Conversion(
        platform, call.call_id, kind, value, call.started_at, call.ended_at, call.caller, url
    )


def too_recent(row: Conversion, now: datetime) -> bool:
    """Whether `row`'s platform would refuse it at `now` as too recent (MIN_AGE): its call
    started less than that long before."""
    age = MIN_AGE.get(row.platform)
    return age is not None and now - row.call_start < age


def _match(platform: str, call: CallFacts, click_id: str) -> tuple[str, str, str]:
    """What `platform` matches the call by: (kind, value, logidUrl)."""
    if platform == "google_ads":
        if click_id not in GOOGLE_CLICK_IDS:
            raise ValueError(f"click_id must be one of {', '.join(GOOGLE_CLICK_IDS)}")
        # One id per row: a visit with a gclid goes in the gclid file only.
        for kind in GOOGLE_CLICK_IDS:
            value = _token(getattr(call, kind))
            if value:
                return (kind, value, "") if kind == click_id else (kind, "", "")
        return click_id, "", ""
    if platform == "google_ads_calls":
        # Google matches call conversions by the caller id in E.164, with its '+'.
        caller = call.caller if call.caller.startswith("+") else ""
        return "caller", caller, ""
    if platform == "microsoft_ads":
        return "msclkid", _token(call.msclkid), ""
    url = _logid_url(call)
    return "bd_vid", _token(call.bd_vid) if url else "", url


def _token(value: str) -> str:
    return value if _CLICK_ID.fullmatch(value) else ""


def _logid_url(call: CallFacts) -> str:
    """The landing URL with its bd_vid, as Baidu wants it; the landing page and bd_vid alone
    when the full URL is longer than Baidu takes or lost its bd_vid."""
    if not call.bd_vid:
        return ""
    url = call.landing_url
    if url and "bd_vid=" in url and len(url) <= BAIDU_MAX_URL:
        return url
    base = call.landing_page or url.split("?", 1)[0]
    short = f"{base}?{urlencode({'bd_vid': call.bd_vid})}"
    return short if len(short) <= BAIDU_MAX_URL else ""


_Item = TypeVar("_Item")


def baidu_batches(items: list[_Item], size: int = BAIDU_MAX_BATCH) -> list[list[_Item]]:
    """`items` in upload batches of at most `size`, never more than Baidu takes at once."""
    size = max(1, min(size, BAIDU_MAX_BATCH))
    return [items[i : i + size] for i in range(0, len(items), size)]
