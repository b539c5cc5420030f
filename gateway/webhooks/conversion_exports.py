"""Conversion files made from the store for the admin API and the CLI: a period's counted
calls as one platform's import file; "new only" leaves out the calls already exported, holds
back the ones the platform would still refuse as too recent, and records the ones this file
holds as sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.config_sites import conversion_settings
from gateway.conversion_settings import ConversionSettings
from gateway.settings import Config
from gateway.store.conversions import (
    call_facts,
    claim_writes,
    claimed_call_ids,
    exported_facts,
    new_batch,
)
from gateway.store.database import Database
from reports.conversion_files import FILE_PLATFORMS, conversion_file
from reports.conversions import (
    GOOGLE_CLICK_IDS,
    Conversion,
    CountRule,
    conversion_for,
    too_recent,
)
from reports.period import Period

__all__ = ["ConversionFile", "export_conversions"]


@dataclass(frozen=True)
class ConversionFile:
    """A made file: its name, text and how many conversions it holds; `held_back`: counted
    calls a new-only file left out as too recent (a later file holds them); `too_recent`: rows
    of this file the platform would refuse now as too recent (files other than new-only)."""

    name: str
    text: str
    count: int
    held_back: int = 0
    too_recent: int = 0


async def export_conversions(
    db: Database,
    config: Config,
    site: str,
    platform: str,
    period: Period,
    *,
    now: datetime,
    new_only: bool = False,
    click_id: str = "gclid",
    again: str = "",
) -> ConversionFile:
    """The import file of `platform` for the calls of `site` in `period` that count; with
    `new_only`, only calls never exported to `platform` and old enough for it at `now`
    (reports.conversions.MIN_AGE), which are then marked sent. `again` names a new-only file
    made before: the same calls again (one lost on its way), unmarked."""
    if platform not in FILE_PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(FILE_PLATFORMS)}")
    settings = conversion_settings(config, site)
    if again:
        return await _again(db, settings, site, platform, period.tz.key, again, now)
    rule = settings.rule()
    facts = await call_facts(
        db, site, period.start_utc, period.end_utc, platform, unsent_only=new_only
    )
    rows: list[Conversion] = []
    for call in facts:
        row = conversion_for(platform, rule, call, click_id)
        if row is not None:
            rows.append(row)
    name = _file_name(site, platform, period, click_id, now if new_only else None)
    recent = sum(1 for row in rows if too_recent(row, now))
    held_back = 0
    if new_only:
        # Not claimed, so still new: the first new-only file made once they are old enough
        # holds them (a file marked sent with them in it would lose them to the refusal).
        rows = [row for row in rows if not too_recent(row, now)]
        held_back, recent = recent, 0
    if new_only and rows:
        batch = new_batch()
        await db.write(claim_writes(rows, site, batch, now, state="sent", answer=name))
        # Another export may have claimed some of them first: this file holds only its own.
        mine = await claimed_call_ids(db, platform, batch)
        rows = [row for row in rows if row.call_id in mine]
    tz = period.tz.key
    text = conversion_file(platform, rows, settings.label(platform), tz, click_id)
    return ConversionFile(name, text, len(rows), held_back, recent)


async def _again(
    db: Database,
    settings: ConversionSettings,
    site: str,
    platform: str,
    tz: str,
    name: str,
    now: datetime,
) -> ConversionFile:
    # What the file held, whatever the rule or a spam mark says now: the same file again.
    kept = CountRule(answered=False, exclude_spam=False)
    click_id = next(
        (c for c in GOOGLE_CLICK_IDS if f"_{FILE_PLATFORMS[platform]}-{c}_" in name), "gclid"
    )
    rows = [
        row
        for call in await exported_facts(db, site, platform, name)
        if (row := conversion_for(platform, kept, call, click_id)) is not None
    ]
    text = conversion_file(platform, rows, settings.label(platform), tz, click_id)
    recent = sum(1 for row in rows if too_recent(row, now))
    return ConversionFile(name, text, len(rows), too_recent=recent)


def _file_name(
    site: str, platform: str, period: Period, click_id: str, stamp: datetime | None
) -> str:
    other_id = platform == "google_ads" and click_id != "gclid"
    kind = FILE_PLATFORMS[platform] + (f"-{click_id}" if other_id else "")
    span = f"{period.first_day.isoformat()}_{period.last_day.isoformat()}"
    # A "new only" file is one of a series: its time tells the files of a day apart.
    suffix = f"_new-{stamp:%Y%m%dT%H%M%SZ}" if stamp is not None else ""
    return f"conversions_{site}_{kind}_{span}{suffix}.csv"
