"""OpenAPI 3.1 path items and schemas of the conversions routes (merged by openapi.py)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    STAFF_OR_KEY,
    TEXT,
    errors,
    json_answer,
    nullable,
    obj,
    param,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

_DAY = {**TEXT, "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "A day, YYYY-MM-DD."}
_BOOL = {"enum": ["true", "false", "1", "0"]}
_PLATFORMS = ["google_ads", "google_ads_calls", "microsoft_ads", "baidu_ocpc"]
_STATES = ["sending", "sent", "retry", "rejected", "failed"]
_SITE = param("site", "query", TEXT, "The site (may be left out when the caller sees one).")
_PERIOD = [
    _SITE,
    param("since", "query", _DAY, "First day of calls (default: 29 days before `until`)."),
    param("until", "query", _DAY, "Last day of calls (default: today in the site's zone)."),
    param(
        "new_only",
        "query",
        _BOOL,
        "Only calls never exported to this platform; the file's calls are then recorded as"
        " sent, so the next new-only file leaves them out. Calls the platform would still"
        " refuse as too recent (Google Ads: a call started under 12 h before for call"
        " conversions, 6 h for click conversions) are left out and not recorded: a new-only"
        " file made once they are old enough holds them. Default false.",
    ),
    param(
        "again",
        "query",
        TEXT,
        "The name of an earlier new-only file (GET /v1/conversions lists it as `answer`): the"
        " same calls again, for a file lost on its way; nothing is recorded.",
    ),
]
_FILES = {
    "google-ads": (
        "googleAdsConversions",
        "Google Ads click conversions (Parameters:TimeZone line, then Google Click ID /"
        " GBRAID / WBRAID, Conversion Name, Conversion Time, Conversion Value, Conversion"
        " Currency)",
    ),
    "google-ads-calls": (
        "googleAdsCallConversions",
        "Google Ads call conversions (Parameters:TimeZone line, then Caller's Phone Number,"
        " Call Start Time, Conversion Name, Conversion Time, Conversion Value, Conversion"
        " Currency)",
    ),
    "microsoft-ads": (
        "microsoftAdsConversions",
        "Microsoft Advertising offline conversions as a bulk file (Offline Conversion records"
        " by Microsoft Click Id, times in UTC)",
    ),
}


def _op(op_id: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "tags": ["conversions"],
        "summary": summary,
        "security": STAFF_OR_KEY,
        **more,
        "responses": {**responses, **errors(400, 401, 403, 404)},
    }


def _file(name: str) -> dict[str, Any]:
    op_id, summary = _FILES[name]
    params = list(_PERIOD)
    if name == "google-ads":
        params.append(
            param(
                "click_id",
                "query",
                {"enum": ["gclid", "gbraid", "wbraid"]},
                "Which click id the file holds: gclid (the Google Click ID column) or"
                " gbraid / wbraid (their own columns after an empty Google Click ID)."
                " Default gclid.",
            )
        )
    csv = {
        "description": "The import file (docs/conversions.md has its columns and sources).",
        "headers": {
            "Content-Disposition": {"schema": TEXT, "description": "attachment; filename=..."},
            "X-Conversion-Count": {"schema": TEXT, "description": "Conversions in the file."},
            "X-Conversion-Held-Back": {
                "schema": TEXT,
                "description": "New-only files: counted calls left out as too recent for the"
                " platform (not recorded; a later new-only file holds them). Otherwise 0.",
            },
            "X-Conversion-Too-Recent": {
                "schema": TEXT,
                "description": "Other files: rows in the file the platform would refuse now as"
                " too recent (import them again once they are old enough). New-only: 0.",
            },
        },
        "content": {"text/csv": {"schema": TEXT}},
    }
    return {"get": _op(op_id, summary, {"200": csv}, parameters=params)}


PATHS: dict[str, dict[str, Any]] = {
    **{f"/v1/conversions/{name}.csv": _file(name) for name in _FILES},
    "/v1/conversions": {
        "get": _op(
            "listConversions",
            "Conversions the store says were sent (or are being retried), newest first",
            {"200": json_answer(ref("ConversionList"), "The site's conversions.")},
            parameters=[
                _SITE,
                param("platform", "query", {"enum": _PLATFORMS}, "Only this platform's."),
                param("state", "query", {"enum": _STATES}, "Only conversions in this state."),
                param("limit", "query", {"type": "integer", "minimum": 0, "maximum": 1000}, ""),
                param("offset", "query", {"type": "integer", "minimum": 0}, "Rows to skip."),
            ],
        )
    },
    "/v1/conversions/baidu-ocpc/send": {
        "post": {
            **_op(
                "sendBaiduOcpc",
                "Upload the site's new Baidu OCPC conversions (and those due a retry) now",
                {
                    "200": json_answer(ref("BaiduSendReport"), "What the run did."),
                    **errors(409),
                },
                parameters=[_SITE],
                description="409 `baidu_not_configured` when the site's"
                " conversions.baidu_ocpc is off or has no token. The daemon runs the same"
                " upload every minute.",
            ),
        }
    },
}

_CONVERSION = obj(
    {
        "call_id": TEXT,
        "platform": {"enum": _PLATFORMS},
        "site": TEXT,
        "click_id": {
            **TEXT,
            "description": "The gclid, gbraid, wbraid, msclkid, bd_vid or caller.",
        },
        "state": {"enum": _STATES},
        "attempts": {"type": "integer", "description": "Upload runs tried (files: 0)."},
        "claimed_at": {**TEXT, "description": "When the conversion was first exported or claimed."},
        "sent_at": nullable({**TEXT, "description": "When it went in a file or was accepted."}),
        "next_attempt_at": nullable({**TEXT, "description": "The next retry (state retry)."}),
        "answer": {**TEXT, "description": "The file's name, or the endpoint's answer."},
    }
)

SCHEMAS: dict[str, Any] = {
    "Conversion": {**_CONVERSION, "description": "One call as sent to one ad platform."},
    "ConversionList": obj(
        {"site": TEXT, "conversions": {"type": "array", "items": ref("Conversion")}}
    ),
    "BaiduSendReport": obj(
        {
            "site": TEXT,
            "sent": {"type": "integer"},
            "retry": {"type": "integer"},
            "rejected": {"type": "integer"},
            "failed": {"type": "integer"},
        }
    ),
}
