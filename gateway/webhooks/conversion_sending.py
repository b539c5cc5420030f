"""Baidu OCPC uploads from the store: the counted calls with a bd_vid are claimed, sent in
batches under Baidu's limit, and each call's outcome written back (sent once accepted; a
failure is retried later, with a growing delay, for about a day)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import structlog

from gateway.config_sites import conversion_settings
from gateway.conversion_settings import ConversionSettings, baidu_token
from gateway.settings import Config
from gateway.store.conversions import (
    call_facts,
    claim_writes,
    claimed_uploads,
    new_batch,
    reclaim_write,
    upload_result_write,
)
from gateway.store.database import Database, Write
from gateway.webhooks.baidu_ocpc import ACCEPTED, RETRY, TOKEN, BaiduItem, BaiduOcpcClient
from reports.conversions import Conversion, baidu_batches, conversion_for

__all__ = [
    "LOOKBACK",
    "MAX_ATTEMPTS",
    "SendReport",
    "retry_delay",
    "send_baidu",
    "send_site_baidu",
]

log = structlog.get_logger()

PLATFORM = "baidu_ocpc"
# Calls older than this are not looked at for a first upload (Baidu wants them while the
# click is fresh; a call that ended before Baidu was enabled is not sent).
LOOKBACK = timedelta(days=7)
# A sender holds its claim this long: if it stops mid-send, another picks the calls up after.
_LEASE = timedelta(minutes=10)
# Runs a failed upload is tried in (each run tries a batch up to the client's attempts):
# with the delays below, about a day of retrying before the call is marked 'failed'.
MAX_ATTEMPTS = 12
_FIRST_RETRY = timedelta(minutes=1)
_LONGEST_RETRY = timedelta(hours=6)
# One run sends at most this many conversions; the next run sends the rest.
_MAX_PER_RUN = 990


@dataclass
class SendReport:
    """What one run did, by outcome (counts of conversions)."""

    sent: int = 0
    retry: int = 0
    rejected: int = 0
    failed: int = 0
    answers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "retry": self.retry,
            "rejected": self.rejected,
            "failed": self.failed,
        }


def retry_delay(attempts: int, jitter: float | None = None) -> timedelta:
    """The wait before run `attempts` + 1: doubling from a minute, at most six hours, with up
    to a fifth more (`jitter` 0-1, random when None) so that sites do not retry in step."""
    base: timedelta = min(_FIRST_RETRY * (2 ** max(0, attempts - 1)), _LONGEST_RETRY)
    return base * (1 + (random.random() if jitter is None else jitter) / 5)


async def send_baidu(
    db: Database,
    site: str,
    settings: ConversionSettings,
    client: BaiduOcpcClient,
    now: datetime,
) -> SendReport:
    """Claim the site's new counted calls with a bd_vid and the uploads due for a retry, send
    them, and write back each outcome."""
    report = SendReport()
    baidu = settings.baidu_ocpc
    rule = settings.rule()
    facts = await call_facts(db, site, now - LOOKBACK, now, PLATFORM, unsent_only=True)
    fresh: list[Conversion] = []
    for call in facts:
        row = conversion_for(PLATFORM, rule, call)
        if row is not None:
            fresh.append(row)
    batch, lease = new_batch(), now + _LEASE
    claims: list[Write] = [reclaim_write(site, PLATFORM, batch, now, lease)]
    claims += claim_writes(
        fresh[:_MAX_PER_RUN], site, batch, now, state="sending", lease_until=lease
    )
    await db.write(claims)
    uploads = (await claimed_uploads(db, PLATFORM, batch))[:_MAX_PER_RUN]
    for group in baidu_batches(uploads, baidu.batch_size):
        answer = await client.upload([BaiduItem(u.payload, baidu.new_type) for u in group])
        report.answers.append(answer.text)
        writes: list[Write] = []
        jitter = random.random()  # one batch failed together: it is retried together
        for upload in group:
            state, retry_at = _state_of(answer.outcome, upload.attempts + 1, now, jitter)
            setattr(report, state, getattr(report, state) + 1)
            writes.append(
                upload_result_write(
                    PLATFORM, batch, upload.call_id, state, answer.text, at=now, retry_at=retry_at
                )
            )
        await db.write(writes)
        if answer.outcome == TOKEN:
            # Every further batch would be refused the same way; the rest wait for the lease.
            log.warning("baidu_ocpc_token_refused", site=site)
            break
    if uploads:
        log.info("baidu_ocpc_sent", site=site, **report.as_dict())
    return report


def _state_of(
    outcome: str, attempts: int, now: datetime, jitter: float
) -> tuple[str, datetime | None]:
    """The stored state after a batch's outcome, and when to try again."""
    if outcome == ACCEPTED:
        return "sent", None
    if outcome in (RETRY, TOKEN):
        if attempts >= MAX_ATTEMPTS:
            return "failed", None
        return "retry", now + retry_delay(attempts, jitter)
    return "rejected", None


async def send_site_baidu(
    db: Database, config: Config, site: str, now: datetime, session: aiohttp.ClientSession
) -> SendReport | None:
    """One upload run for `site` with its configured endpoint and token; None when the site
    has Baidu OCPC off or no token."""
    settings = conversion_settings(config, site)
    baidu = settings.baidu_ocpc
    token = baidu_token(baidu)
    if not baidu.enabled or not token:
        return None
    client = BaiduOcpcClient(session, baidu.endpoint, token)
    return await send_baidu(db, site, settings, client, now)
