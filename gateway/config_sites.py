"""The config's sites checked as a whole: numbers in E.164 and used once, plain dial strings,
pool timing, rules, time zones and conversion settings."""

from __future__ import annotations

import re
import zoneinfo

from gateway.config_error import ConfigError
from gateway.conversion_settings import ConversionSettings, conversions_problem
from gateway.settings import Config, PoolSettings, SiteSettings
from numberpool.lease_timing import CHOICES, TIMING_DEFAULTS, timing_problem
from numberpool.phone import InvalidNumber, normalise

__all__ = [
    "SiteCheck",
    "check_conversions",
    "check_sites",
    "check_timezone",
    "conversion_settings",
]

# What CTGW_ROUTE may hold: a technology/resource with no Dial() options or second destination.
_DIAL_STRING = re.compile(r"[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9@._:+-]+(/[A-Za-z0-9@._:+-]+)*")


class SiteCheck:
    """The sites' numbers and dial strings; a number may serve one place of one site only."""

    def __init__(self, config: Config) -> None:
        self.src = config.source
        self.region = config.phone.default_region
        self.seen_numbers: dict[str, str] = {}

    def number(self, value: str, key: str) -> None:
        try:
            e164 = normalise(value, self.region)
        except InvalidNumber as exc:
            raise ConfigError(f"{self.src}: '{key}': {exc}") from None
        if e164 != value:
            raise ConfigError(f"{self.src}: '{key}': write numbers in E.164, e.g. {e164}")

    def unique(self, value: str, key: str) -> None:
        self.number(value, key)
        if value in self.seen_numbers:
            raise ConfigError(
                f"{self.src}: '{key}': {value} is already used by {self.seen_numbers[value]}"
            )
        self.seen_numbers[value] = key

    def destination(self, value: str, key: str) -> None:
        if value and not _DIAL_STRING.fullmatch(value):
            raise ConfigError(
                f"{self.src}: '{key}': {value!r} is not a plain dial string like PJSIP/agent1 or "
                "Local/100@agents (letters, digits and / @ . _ - + : only)"
            )

    def pool(self, site: SiteSettings, pool: PoolSettings, pat: str) -> None:
        self.number(pool.target, f"{pat}.target")
        if not pool.numbers:
            raise ConfigError(f"{self.src}: '{pat}.numbers' must list at least one number")
        for k, n in enumerate(pool.numbers):
            self.unique(n, f"{pat}.numbers[{k}]")
        if pool.overflow:
            self.unique(pool.overflow, f"{pat}.overflow")
        self.destination(pool.destination, f"{pat}.destination")
        rules = {k: getattr(pool, k) for k in (*TIMING_DEFAULTS, *CHOICES)}
        problem = timing_problem(rules)
        if problem:
            key, reason = problem
            raise ConfigError(f"{self.src}: '{pat}.{key}' {reason} (pool {site.key}:{pool.target})")

    def rules(self, site: SiteSettings, at: str) -> None:
        statics = {s.number for s in site.static_numbers}
        for j, rule in enumerate(site.rules):
            rat = f"{at}.rules[{j}]"
            if rule.number not in statics:
                raise ConfigError(
                    f"{self.src}: '{rat}.number' must be one of the site's static_numbers"
                )
            self.number(rule.target, f"{rat}.target")
            if not rule.param and not rule.referrer_contains:
                raise ConfigError(f"{self.src}: '{rat}' needs 'param' or 'referrer_contains'")


def check_sites(config: Config) -> None:
    src = config.source
    check = SiteCheck(config)
    seen_keys: set[str] = set()
    for i, site in enumerate(config.sites):
        at = f"sites[{i}]"
        check.destination(site.destination, f"{at}.destination")
        if not site.key or len(site.key) > 64 or not site.key.replace("-", "").isalnum():
            raise ConfigError(f"{src}: '{at}.key' must be 1-64 letters, digits or '-'")
        if site.key in seen_keys:
            raise ConfigError(f"{src}: '{at}.key': site '{site.key}' is defined twice")
        seen_keys.add(site.key)
        for j, pool in enumerate(site.pools):
            check.pool(site, pool, f"{at}.pools[{j}]")
        for j, static in enumerate(site.static_numbers):
            check.unique(static.number, f"{at}.static_numbers[{j}].number")
            check.destination(static.destination, f"{at}.static_numbers[{j}].destination")
        check.rules(site, at)
        check_timezone(site.timezone, f"{src}: '{at}.timezone'")


def check_timezone(name: str, where: str) -> None:
    """A site's reports count days in its zone: a name zoneinfo does not know is refused."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"{where}: {name!r} is not an IANA time zone like Europe/Paris or UTC"
        ) from None


def conversion_settings(config: Config, site: str) -> ConversionSettings:
    """The conversions settings of `site` (the defaults for a site not in the config file)."""
    for entry in config.sites:
        if entry.key == site:
            return entry.conversions
    return ConversionSettings()


def check_conversions(config: Config) -> None:
    """Raise ConfigError naming the first unusable `conversions` key of any site."""
    for i, site in enumerate(config.sites):
        problem = conversions_problem(site.conversions)
        if problem:
            raise ConfigError(f"{config.source}: 'sites[{i}].{problem[0]}' {problem[1]}")
