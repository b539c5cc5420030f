"""The daemon's conversion worker (a cleanup context): every minute it uploads each Baidu
OCPC site's new conversions, and after each local midnight it writes the new-only import files
of the sites that name an export_dir. Nothing runs when no site asks for either."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from gateway.appkeys import CLOCK, CONFIG, DB
from gateway.settings import Config, SiteSettings
from gateway.store.database import Database
from gateway.store.report_rows import site_timezone
from gateway.tasks import cancel_and_wait
from gateway.webhooks.conversion_exports import export_conversions
from gateway.webhooks.conversion_sending import send_site_baidu
from reports.conversion_files import FILE_PLATFORMS
from reports.conversions import GOOGLE_CLICK_IDS
from reports.period import Period, zone

__all__ = ["conversion_worker", "write_daily_files", "write_file"]

log = structlog.get_logger()

_ROUND_SECONDS = 60.0
# A daily file covers the calls of the last 30 days not exported yet.
_DAILY_DAYS = 30


async def conversion_worker(app: web.Application) -> AsyncIterator[None]:
    """Run the worker while the app runs, when a site uploads to Baidu or exports daily."""
    config = app[CONFIG]
    baidu = [s.key for s in config.sites if s.conversions.baidu_ocpc.enabled]
    daily = [s for s in config.sites if s.conversions.export_dir]
    if not baidu and not daily:
        yield
        return
    session = aiohttp.ClientSession()
    # The local day each daily site last wrote for: the first round only notes today.
    written: dict[str, date] = {}

    async def loop() -> None:
        while True:
            now = app[CLOCK].now()
            for site in baidu:
                try:
                    await send_site_baidu(app[DB], config, site, now, session)
                except Exception:  # one site's failure must not stop the others
                    log.exception("baidu_ocpc_round_failed", site=site)
            for entry in daily:
                try:
                    await _daily(app[DB], config, entry, now, written)
                except Exception:
                    log.exception("conversion_files_failed", site=entry.key)
            await asyncio.sleep(_ROUND_SECONDS)

    task = asyncio.create_task(loop(), name="conversions")
    try:
        yield
    finally:
        await cancel_and_wait(task)
        await session.close()


async def _daily(
    db: Database, config: Config, entry: SiteSettings, now: datetime, written: dict[str, date]
) -> None:
    tz = await site_timezone(db, entry.key) or "UTC"
    today = now.astimezone(zone(tz)).date()
    last = written.setdefault(entry.key, today)
    if last == today:
        return
    written[entry.key] = today
    await write_daily_files(db, config, entry, tz, today - timedelta(days=1), now)


async def write_daily_files(
    db: Database, config: Config, entry: SiteSettings, tz: str, last_day: date, now: datetime
) -> list[Path]:
    """Write one new-only file per platform into the site's export_dir, for the calls of the
    30 days up to `last_day` not exported yet and old enough for the platform at `now` (the
    others wait for a later file); returns the files written."""
    first = last_day - timedelta(days=_DAILY_DAYS - 1)
    period = Period.parse(first.isoformat(), last_day.isoformat(), tz)
    folder = Path(entry.conversions.export_dir)
    paths = []
    kinds = [
        (p, c)
        for p in FILE_PLATFORMS
        for c in (GOOGLE_CLICK_IDS if p == "google_ads" else ("gclid",))
    ]
    for platform, click_id in kinds:
        made = await export_conversions(
            db, config, entry.key, platform, period, now=now, new_only=True, click_id=click_id
        )
        path = folder / made.name
        try:
            await asyncio.to_thread(write_file, path, made.text)
        except OSError as exc:
            # Its calls are recorded as exported: `ctgw conversions export --again NAME`.
            log.error("conversion_file_not_written", path=str(path), error=str(exc))
            raise
        # Held back: calls too recent for the platform yet, in a later day's file.
        log.info(
            "conversion_file_written",
            site=entry.key,
            path=str(path),
            count=made.count,
            held_back=made.held_back,
        )
        paths.append(path)
    return paths


def write_file(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (a cron uploader never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)
