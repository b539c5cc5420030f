"""Sites, pools and numbers in the store, seeded from config, built into numberpool objects."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.config import Config, ConfigError, LimitSettings, PoolSettings, SiteSettings
from gateway.store.database import Database, Row, Write
from gateway.store.numbers import place_writes
from gateway.store.times import ts
from numberpool.amp_origins import amp_origins
from numberpool.lease_timing import WHEN_EXHAUSTED, timing_problem
from numberpool.phone import display
from numberpool.pool import LeaseRules, Pool
from numberpool.site import Rule, Site, StaticNumber

__all__ = [
    "SiteEntry",
    "load_sites",
    "pool_id_for",
    "seed_sites",
    "settings_fingerprint",
    "site_writes",
]

# Changes whenever a site, pool or number is added, changed or removed; cheap to read.
_SETTINGS_FINGERPRINT = (
    "SELECT (SELECT count(*) || ':' || total(rowid) FROM numbers) || '|' ||"
    " (SELECT coalesce(group_concat(key || name || allowed_origins || destination || settings),"
    " '') FROM sites) || '|' ||"
    " (SELECT coalesce(group_concat(pool_id || overflow || settings), '') FROM pools)"
)

# PostgreSQL: no rowid, so the numbers count in by their text and pool; string_agg in key
# order (group_concat's table order is stable in SQLite, a heap's order is not).
_SETTINGS_FINGERPRINT_PG = (
    "SELECT (SELECT count(*) || ':' || coalesce(md5(string_agg(number || ' ' || pool_id, ','"
    " ORDER BY number)), '') FROM numbers) || '|' ||"
    " (SELECT coalesce(string_agg(key || name || allowed_origins || destination || settings, ','"
    " ORDER BY key), '') FROM sites) || '|' ||"
    " (SELECT coalesce(string_agg(pool_id || overflow || settings, ',' ORDER BY pool_id), '')"
    " FROM pools)"
)
# A pool's numbers in the order added: rowid in SQLite; PostgreSQL has only the time they were
# added, and numbers added together come in number order.
_POOL_NUMBERS = {
    "sqlite": "SELECT number, pool_id FROM numbers ORDER BY rowid",
    "postgresql": "SELECT number, pool_id FROM numbers ORDER BY added_at, number",
}


@dataclass
class SiteEntry:
    """A site as the gateway serves it: the domain object plus its web and routing settings."""

    site: Site
    name: str = ""
    allowed_origins: frozenset[str] = frozenset()
    destination: str = ""
    limits: LimitSettings = field(default_factory=LimitSettings)
    # The origins AMP requests may come from: allowed origins and their AMP Cache origins.
    amp_origins: frozenset[str] = frozenset()
    displays: dict[str, str] = field(default_factory=dict)
    offers_json: dict[tuple[str, str, str], str] = field(default_factory=dict)
    destinations: dict[str, str] = field(default_factory=dict)
    # Asterisk spells the call's source to the agent before connecting (CTGW_WHISPER).
    whisper: bool = False

    def destination_for(self, dialed: str) -> str:
        """The dial string for a call on `dialed`: its pool's or number's, else the site's."""
        for pool in self.site.pools:
            if dialed in pool or dialed == pool.overflow:
                return self.destinations.get(pool.pool_id) or self.destination
        return self.destinations.get(dialed) or self.destination

    def display(self, number: str) -> str:
        shown = self.displays.get(number)
        if shown is None:
            shown = self.displays[number] = display(number)
        return shown

    def heartbeat_seconds(self) -> int:
        """The heartbeat interval the swap script is told: the shortest of the site's pools."""
        beats = [int(p.rules.heartbeat.total_seconds()) for p in self.site.pools]
        return min(beats, default=60)

    def offer_json(self, target: str, number: str, kind: str) -> str:
        """One entry of a session answer's `numbers`, as JSON; made once per distinct entry
        (their count is bounded by the site's configured numbers)."""
        key = (target, number, kind)
        text = self.offers_json.get(key)
        if text is None:
            item = {"target": target, "number": number, "display": self.display(number)}
            text = self.offers_json[key] = json.dumps({**item, "kind": kind})
        return text


def pool_id_for(site_key: str, target: str) -> str:
    """Pools are named by site and the number they swap, so config reloads keep their ids."""
    return f"{site_key}:{target}"


def _pool_settings(pool: PoolSettings) -> dict[str, Any]:
    return {
        "heartbeat_seconds": pool.heartbeat_seconds,
        "grace_seconds": pool.grace_seconds,
        "cooldown_seconds": pool.cooldown_seconds,
        "attribution_window_seconds": pool.attribution_window_seconds,
        "probation_seconds": pool.probation_seconds,
        "amp_lease_seconds": pool.amp_lease_seconds,
        "require_params": list(pool.require_params),
        "destination": pool.destination,
        "when_exhausted": pool.when_exhausted,
        "min_cooldown_seconds": pool.min_cooldown_seconds,
        "dial_delay_seconds": pool.dial_delay_seconds,
        "share_called_numbers": pool.share_called_numbers,
    }


def site_writes(site: SiteSettings, at: datetime, *, from_config: bool) -> list[Write]:
    """Statements that make the store hold `site` with its pools and numbers (an upsert)."""
    settings = {
        "static_numbers": [asdict(s) for s in site.static_numbers],
        "rules": [asdict(r) for r in site.rules],
        "bot_user_agents": list(site.bot_user_agents),
        "limits": asdict(site.limits),
        "timezone": site.timezone,
        "whisper": site.whisper,
    }
    writes = [
        Write(
            "INSERT INTO sites (key, name, allowed_origins, destination, settings, from_config,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
            " name=excluded.name, allowed_origins=excluded.allowed_origins,"
            " destination=excluded.destination, settings=excluded.settings,"
            " from_config=excluded.from_config",
            (
                site.key,
                site.name,
                json.dumps(site.allowed_origins),
                site.destination,
                json.dumps(settings),
                int(from_config),
                ts(at),
            ),
            rank=10,
        )
    ]
    for pool in site.pools:
        pool_id = pool_id_for(site.key, pool.target)
        writes.append(
            Write(
                "INSERT INTO pools (pool_id, site, target, overflow, settings, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(pool_id) DO UPDATE SET"
                " overflow=excluded.overflow, settings=excluded.settings",
                (
                    pool_id,
                    site.key,
                    pool.target,
                    pool.overflow,
                    json.dumps(_pool_settings(pool)),
                    ts(at),
                ),
                rank=11,
            )
        )
        writes += place_writes(pool_id, pool.numbers, at, rank=12)
    return writes


async def seed_sites(db: Database, config: Config, at: datetime) -> None:
    """Write the config's sites into the store; config wins for the sites it names."""
    writes = [w for site in config.sites for w in site_writes(site, at, from_config=True)]
    await db.write(writes)


async def load_sites(db: Database) -> dict[str, SiteEntry]:
    """Build the runtime sites from the store (leases are restored separately)."""
    entries: dict[str, SiteEntry] = {}
    for row in await db.fetchall("SELECT * FROM sites ORDER BY key"):
        entries[row["key"]] = _site_entry(row)
    numbers: dict[str, list[str]] = {}
    for row in await db.fetchall(_POOL_NUMBERS[db.dialect]):
        numbers.setdefault(row["pool_id"], []).append(row["number"])
    for row in await db.fetchall("SELECT * FROM pools ORDER BY created_at, pool_id"):
        entry = entries.get(row["site"])
        if entry is None:
            continue
        settings = json.loads(row["settings"])
        pool = _pool(row, settings, numbers.get(row["pool_id"], []))
        if settings.get("destination"):
            entry.destinations[row["pool_id"]] = settings["destination"]
        entry.site.pools.append(pool)
    return entries


def _site_entry(row: Row) -> SiteEntry:
    """A stored site, without its pools."""
    settings = json.loads(row["settings"])
    bots = settings.get("bot_user_agents", [])
    origins = frozenset(json.loads(row["allowed_origins"]))
    site = Site(
        key=row["key"],
        static_numbers=[
            StaticNumber(s["number"], s["source"], s.get("medium", ""), s.get("campaign", ""))
            for s in settings.get("static_numbers", [])
        ],
        rules=[Rule(**r) for r in settings.get("rules", [])],
        bot_user_agents=tuple(b.lower() for b in bots),
    )
    return SiteEntry(
        site=site,
        name=row["name"],
        allowed_origins=origins,
        destination=row["destination"],
        limits=LimitSettings(**settings.get("limits", {})),
        amp_origins=amp_origins(origins),
        destinations={
            s["number"]: s["destination"]
            for s in settings.get("static_numbers", [])
            if s.get("destination")
        },
        whisper=bool(settings.get("whisper", False)),
    )


def _pool(row: Row, settings: dict[str, Any], numbers: list[str]) -> Pool:
    """A stored pool with its numbers; ConfigError when its lease timing is impossible."""
    problem = timing_problem(settings)
    if problem:
        key, reason = problem
        raise ConfigError(
            f"store: pool {row['pool_id']}: '{key}' {reason}; define the site in the config "
            "file (the config wins for the sites it names) or correct the pool in the store"
        )
    rules = LeaseRules(
        heartbeat=timedelta(seconds=settings.get("heartbeat_seconds", 60)),
        grace=timedelta(seconds=settings.get("grace_seconds", 900)),
        cooldown=timedelta(seconds=settings.get("cooldown_seconds", 300)),
        attribution_window=timedelta(seconds=settings.get("attribution_window_seconds", 3600)),
        probation=timedelta(seconds=settings.get("probation_seconds", 120)),
        amp_lease=timedelta(seconds=settings.get("amp_lease_seconds", 300)),
        # A pool stored before these settings existed takes their defaults.
        when_exhausted=settings.get("when_exhausted", WHEN_EXHAUSTED[0]),
        min_cooldown=timedelta(seconds=settings.get("min_cooldown_seconds", 0)),
        dial_delay=timedelta(seconds=settings.get("dial_delay_seconds", 0)),
        share_called=settings.get("share_called_numbers", True),
    )
    return Pool(
        row["pool_id"],
        row["target"],
        numbers,
        rules,
        overflow=row["overflow"],
        require_params=tuple(settings.get("require_params", [])),
    )


async def settings_fingerprint(db: Database) -> str:
    """A text that changes whenever a site, pool or number is added, changed or removed (by the
    admin API or the CLI); cheap to read, so the running gateway can poll it."""
    sql = _SETTINGS_FINGERPRINT if db.dialect == "sqlite" else _SETTINGS_FINGERPRINT_PG
    row = await db.fetchone(sql)
    return str(row[0]) if row else ""
