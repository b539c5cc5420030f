"""A site's `conversions` settings: which calls count, what each ad platform calls them and
what they are worth, and the Baidu OCPC upload (docs/conversions.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

# reports/ is imported where it is used: settings.py loads this module, and the call path
# (which reads settings) loads nothing of reports/.
if TYPE_CHECKING:
    from reports.conversion_files import ConversionLabel
    from reports.conversions import CountRule

__all__ = [
    "BAIDU_UPLOAD_URL",
    "BaiduOcpcSettings",
    "ConversionLabelSettings",
    "ConversionSettings",
    "baidu_token",
    "conversions_problem",
]

# Baidu's documented upload address (docs/conversions.md).
BAIDU_UPLOAD_URL = "https://ocpc.baidu.com/ocpcapi/api/uploadConvertData"


@dataclass(frozen=True)
class ConversionLabelSettings:
    name: str = field(
        default="Phone call",
        metadata={"help": "conversion name, exactly as the conversion action is named there"},
    )
    value: str = field(default="0", metadata={"help": "value of one conversion, e.g. '49.90'"})
    currency: str = field(default="USD", metadata={"help": "ISO 4217 currency of the value"})

    def label(self) -> ConversionLabel:
        from reports.conversion_files import ConversionLabel

        return ConversionLabel(self.name, self.value, self.currency)


@dataclass(frozen=True)
class BaiduOcpcSettings:
    enabled: bool = field(
        default=False, metadata={"help": "send counted calls with a bd_vid to Baidu OCPC"}
    )
    new_type: int = field(
        default=0,
        metadata={
            "help": "newType: Baidu's conversion type code, as the account's conversion"
            " tracking lists it (required when enabled)"
        },
    )
    endpoint: str = field(default=BAIDU_UPLOAD_URL, metadata={"help": "upload URL"})
    token: str = field(
        default="",
        repr=False,  # never printed with the settings
        metadata={"help": "API token of the account (better: token_env)"},
    )
    token_env: str = field(
        default="CTGW_BAIDU_OCPC_TOKEN",
        metadata={"help": "environment variable holding the token when `token` is empty"},
    )
    batch_size: int = field(
        default=99, metadata={"help": "conversions per request (Baidu takes fewer than 100)"}
    )


@dataclass(frozen=True)
class ConversionSettings:
    answered: bool = field(default=True, metadata={"help": "only answered calls count"})
    min_talk_seconds: int = field(
        default=0, metadata={"help": "talk time a call needs to count (0: any)"}
    )
    first_time_only: bool = field(
        default=False, metadata={"help": "only a caller's first call counts"}
    )
    exclude_spam: bool = field(
        default=True, metadata={"help": "calls or leads marked spam never count"}
    )
    dispositions: list[str] = field(
        default_factory=list,
        metadata={"help": "a call counts only with one of these dispositions (empty: any)"},
    )
    google_ads: ConversionLabelSettings = field(
        default_factory=ConversionLabelSettings,
        metadata={"help": "Google Ads click conversions (gclid, gbraid, wbraid)"},
    )
    google_ads_calls: ConversionLabelSettings = field(
        default_factory=ConversionLabelSettings,
        metadata={"help": "Google Ads call conversions (caller id and call start)"},
    )
    microsoft_ads: ConversionLabelSettings = field(
        default_factory=ConversionLabelSettings,
        metadata={"help": "Microsoft Advertising offline conversions (msclkid)"},
    )
    baidu_ocpc: BaiduOcpcSettings = field(
        default_factory=BaiduOcpcSettings, metadata={"help": "Baidu OCPC conversion upload"}
    )
    export_dir: str = field(
        default="",
        metadata={
            "help": "folder the daemon writes each day's new-only import files into,"
            " one per platform (empty: none; `ctgw conversions export` for cron)"
        },
    )

    def rule(self) -> CountRule:
        """The counting rule as reports/conversions.py applies it."""
        from reports.conversions import CountRule

        return CountRule(
            self.answered,
            float(self.min_talk_seconds),
            self.first_time_only,
            self.exclude_spam,
            tuple(self.dispositions),
        )

    def label(self, platform: str) -> ConversionLabel:
        """The name, value and currency of `platform`'s file rows."""
        labels = {
            "google_ads": self.google_ads,
            "google_ads_calls": self.google_ads_calls,
            "microsoft_ads": self.microsoft_ads,
        }
        return labels[platform].label()


def baidu_token(settings: BaiduOcpcSettings, environ: Mapping[str, str] | None = None) -> str:
    """The Baidu token: from the config, else from the environment variable it names."""
    env = os.environ if environ is None else environ
    return settings.token or (env.get(settings.token_env, "") if settings.token_env else "")


def conversions_problem(conv: ConversionSettings) -> tuple[str, str] | None:
    """The first key of a site's `conversions` that cannot be used, with the reason."""
    from reports.conversion_files import label_problem

    for platform in ("google_ads", "google_ads_calls", "microsoft_ads"):
        problem = label_problem(conv.label(platform))
        if problem:
            key, _, reason = problem.partition(": ")
            return f"conversions.{platform}.{key}", reason
    if any(not d.strip() for d in conv.dispositions):
        return "conversions.dispositions", "must not hold an empty name"
    baidu = conv.baidu_ocpc
    if baidu.batch_size < 1 or baidu.batch_size > 99:
        return "conversions.baidu_ocpc.batch_size", "must be 1-99 (Baidu takes fewer than 100)"
    parts = urlsplit(baidu.endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "conversions.baidu_ocpc.endpoint", "must be an http(s) URL"
    if baidu.enabled and baidu.new_type == 0:
        return "conversions.baidu_ocpc.new_type", "is required when enabled (Baidu's newType)"
    return None
