"""The gateway's one TOML config file, validated, with `CTGW_<SECTION>_<KEY>` overrides."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numberpool.lease_timing import TIMING_DEFAULTS, timing_problem
from numberpool.phone import InvalidNumber, normalise

__all__ = [
    "AgiSettings",
    "AmiSettings",
    "AsteriskSettings",
    "Config",
    "ConfigError",
    "HttpSettings",
    "LimitSettings",
    "LogSettings",
    "PhoneSettings",
    "PoolSettings",
    "RuleSettings",
    "SiteSettings",
    "StaticNumberSettings",
    "StoreSettings",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names file, key and reason."""


_REQUIRED: Any = dataclasses.MISSING


@dataclass(frozen=True)
class HttpSettings:
    host: str = field(default="127.0.0.1", metadata={"help": "address the HTTP API binds"})
    port: int = field(default=8080, metadata={"help": "HTTP API port"})
    public_url: str = field(default="", metadata={"help": "URL websites reach us at (for links)"})
    max_body_bytes: int = field(default=16384, metadata={"help": "largest accepted request body"})
    header_timeout_seconds: int = field(
        default=10, metadata={"help": "time a request's headers may take from its first byte"}
    )
    body_timeout_seconds: int = field(
        default=30, metadata={"help": "time a request's body may take after its headers"}
    )
    keepalive_timeout_seconds: int = field(
        default=75, metadata={"help": "time an idle connection stays open"}
    )
    max_connections: int = field(
        default=10000, metadata={"help": "open connections a process accepts in all"}
    )
    max_connections_per_client: int = field(
        default=256, metadata={"help": "open connections from one client address (0: no cap)"}
    )
    workers: int = field(
        default=0,
        metadata={"help": "HTTP front processes (0: the gateway process answers HTTP itself)"},
    )
    trusted_proxies: list[str] = field(
        default_factory=list,
        metadata={
            "help": "proxy addresses or networks whose X-Forwarded-For names the client"
            " (e.g. 127.0.0.1, 10.0.0.0/8)"
        },
    )

    @functools.cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """`trusted_proxies` parsed once (it is read on every session request)."""
        return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies)


@dataclass(frozen=True)
class StoreSettings:
    url: str = field(
        default="sqlite:///var/ctgw.db", metadata={"help": "sqlite:///PATH or postgresql://..."}
    )


@dataclass(frozen=True)
class AgiSettings:
    host: str = field(default="127.0.0.1", metadata={"help": "address the FastAGI server binds"})
    port: int = field(default=4573, metadata={"help": "FastAGI port"})
    deadline_ms: int = field(default=300, metadata={"help": "time to decide a route"})
    enabled: bool = field(default=True, metadata={"help": "run the FastAGI server"})


@dataclass(frozen=True)
class AmiSettings:
    host: str = field(default="127.0.0.1", metadata={"help": "Asterisk manager address"})
    port: int = field(default=5038, metadata={"help": "Asterisk manager port"})
    username: str = field(default="ctgw", metadata={"help": "manager.conf user"})
    secret: str = field(default="", metadata={"help": "manager.conf secret (use CTGW_AMI_SECRET)"})
    enabled: bool = field(default=False, metadata={"help": "connect to AMI"})


@dataclass(frozen=True)
class AsteriskSettings:
    config_dir: str = field(
        default="/etc/asterisk", metadata={"help": "Asterisk's config folder, read by ctgw doctor"}
    )
    click_to_call: bool = field(
        default=False, metadata={"help": "the AMI user may originate calls (click-to-call)"}
    )


@dataclass(frozen=True)
class LogSettings:
    level: str = field(default="info", metadata={"help": "debug, info, warning or error"})
    format: str = field(default="json", metadata={"help": "json or console"})


@dataclass(frozen=True)
class PhoneSettings:
    default_region: str = field(
        default="US", metadata={"help": "region for numbers written without a country code"}
    )


@dataclass(frozen=True)
class PoolSettings:
    target: str = field(default=_REQUIRED, metadata={"help": "the site's number this pool swaps"})
    numbers: list[str] = field(default=_REQUIRED, metadata={"help": "tracking numbers"})
    overflow: str = field(default="", metadata={"help": "number shown when the pool is exhausted"})
    heartbeat_seconds: int = field(default=60, metadata={"help": "heartbeat interval"})
    grace_seconds: int = field(default=900, metadata={"help": "lease life after last heartbeat"})
    cooldown_seconds: int = field(default=300, metadata={"help": "rest before a number is reused"})
    attribution_window_seconds: int = field(
        default=3600, metadata={"help": "how long after a lease ends a call is 'probable'"}
    )
    probation_seconds: int = field(
        default=120, metadata={"help": "lease life until the first heartbeat arrives"}
    )
    amp_lease_seconds: int = field(
        default=300, metadata={"help": "lease life of an AMP page (it cannot heartbeat)"}
    )
    require_params: list[str] = field(
        default_factory=list, metadata={"help": "lease only when the URL has one of these"}
    )
    destination: str = field(
        default="", metadata={"help": "dial string for calls to this pool (default: the site's)"}
    )


@dataclass(frozen=True)
class StaticNumberSettings:
    number: str = field(default=_REQUIRED, metadata={"help": "the static source number"})
    source: str = field(default=_REQUIRED, metadata={"help": "utm_source-like label"})
    medium: str = field(default="", metadata={"help": "utm_medium-like label"})
    campaign: str = field(default="", metadata={"help": "campaign label"})
    destination: str = field(
        default="", metadata={"help": "dial string for calls to it (default: the site's)"}
    )


@dataclass(frozen=True)
class RuleSettings:
    number: str = field(default=_REQUIRED, metadata={"help": "static number shown on a match"})
    target: str = field(default=_REQUIRED, metadata={"help": "the site's number it replaces"})
    param: str = field(default="", metadata={"help": "URL parameter to match"})
    value: str = field(default="", metadata={"help": "parameter value (empty: any)"})
    referrer_contains: str = field(default="", metadata={"help": "referrer substring to match"})


@dataclass(frozen=True)
class LimitSettings:
    client_per_minute: int = field(
        default=20, metadata={"help": "new sessions a minute from one client address (0: no limit)"}
    )
    client_burst: int = field(
        default=20, metadata={"help": "new sessions one client address may open at once"}
    )
    site_per_minute: int = field(
        default=0, metadata={"help": "new sessions a minute from all clients (0: no limit)"}
    )
    site_burst: int = field(
        default=0, metadata={"help": "new sessions all clients may open at once (0: a minute's)"}
    )
    client_live_numbers: int = field(
        default=3,
        metadata={
            "help": "pool numbers one client address may hold at once; its further sessions"
            " get the overflow number (0: no cap)"
        },
    )


@dataclass(frozen=True)
class SiteSettings:
    key: str = field(default=_REQUIRED, metadata={"help": "public site key used by swap.js"})
    name: str = field(default="", metadata={"help": "display name"})
    allowed_origins: list[str] = field(
        default_factory=list, metadata={"help": "origins allowed to create sessions"}
    )
    destination: str = field(default="", metadata={"help": "dial string calls are routed to"})
    pools: list[PoolSettings] = field(default_factory=list, metadata={"help": "number pools"})
    static_numbers: list[StaticNumberSettings] = field(
        default_factory=list, metadata={"help": "offline source numbers"}
    )
    rules: list[RuleSettings] = field(
        default_factory=list, metadata={"help": "URL and referrer rules"}
    )
    bot_user_agents: list[str] = field(
        default_factory=list,
        metadata={"help": "user-agent substrings that never lease, on top of the built-in list"},
    )
    limits: LimitSettings = field(
        default_factory=LimitSettings, metadata={"help": "new sessions per client and per site"}
    )


@dataclass(frozen=True)
class Config:
    http: HttpSettings = field(default_factory=HttpSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    log: LogSettings = field(default_factory=LogSettings)
    phone: PhoneSettings = field(default_factory=PhoneSettings)
    sites: list[SiteSettings] = field(default_factory=list)
    source: str = field(default="<defaults>", metadata={"internal": True})


# What CTGW_ROUTE may hold: a technology/resource with no Dial() options or second destination.
_DIAL_STRING = re.compile(r"[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9@._:+-]+(/[A-Za-z0-9@._:+-]+)*")

_SCALAR_SECTIONS = ("http", "store", "agi", "ami", "asterisk", "log", "phone")


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment and validate the config at `path` (None: defaults)."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_config(raw, source=source, environ=environ)


def parse_config(
    raw: Mapping[str, Any], *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed TOML mapping and apply environment overrides."""
    data: dict[str, Any] = dict(raw)
    for name, value in (environ or {}).items():
        if not name.startswith("CTGW_"):
            continue
        section, _, key = name[5:].lower().partition("_")
        if section not in _SCALAR_SECTIONS or not key:
            continue
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        data[section] = {**table, key: _EnvValue(name, value)}
    config: Config = _build(Config, data, source, "")
    config = dataclasses.replace(config, source=source)
    _check_semantics(config)
    return config


@dataclass(frozen=True)
class _EnvValue:
    name: str
    text: str


def _build(cls: type[Any], data: Any, source: str, where: str) -> Any:
    label = where or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {label}: expected a table, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in known:
            allowed = ", ".join(sorted(known))
            # repr: a quoted TOML key may hold a newline or a control character.
            raise ConfigError(f"{source}: unknown key {_join(where, key)!r} (known: {allowed})")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        key = _join(where, name)
        if name not in data:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: '{key}' is required ({spec.metadata.get('help')})")
            continue
        values[name] = _coerce(hints[name], data[name], source, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(value, _EnvValue):
        return _from_env(hint, value, source, key)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, source, key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list, got {_kind(value)}")
        return [_coerce(item, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {_kind(value)}")
        if value < 0:
            raise ConfigError(f"{source}: '{key}' must not be negative")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {_kind(value)}")
        return value
    if isinstance(hint, types.UnionType):  # pragma: no cover - no unions in settings yet
        raise ConfigError(f"{source}: '{key}': unsupported type")
    raise ConfigError(f"{source}: '{key}': unsupported type {hint!r}")  # pragma: no cover


def _from_env(hint: Any, value: _EnvValue, source: str, key: str) -> Any:
    where = f"environment variable {value.name}"
    if hint is str:
        return value.text
    if hint == list[str]:
        return [item.strip() for item in value.text.split(",") if item.strip()]
    if hint is int:
        try:
            number = int(value.text)
        except ValueError:
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value.text!r}") from None
        if number < 0:
            raise ConfigError(f"{where}: '{key}' must not be negative")
        return number
    if hint is bool:
        lowered = value.text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: '{key}' must be true or false, got {value.text!r}")
    raise ConfigError(f"{where}: '{key}' cannot be set from the environment")


def _check_semantics(config: Config) -> None:
    src = config.source
    if config.log.level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{src}: 'log.level' must be debug, info, warning or error")
    if config.log.format not in ("json", "console"):
        raise ConfigError(f"{src}: 'log.format' must be json or console")
    for key in ("header_timeout_seconds", "body_timeout_seconds", "keepalive_timeout_seconds"):
        if getattr(config.http, key) == 0:
            raise ConfigError(f"{src}: 'http.{key}' must be at least 1")
    if config.http.max_connections == 0:
        raise ConfigError(f"{src}: 'http.max_connections' must be at least 1")
    if config.http.workers > 64:
        raise ConfigError(f"{src}: 'http.workers' must be 0-64 (one per core is plenty)")
    ports = (("http", config.http.port), ("agi", config.agi.port), ("ami", config.ami.port))
    for section, port in ports:
        if port > 65535:
            raise ConfigError(f"{src}: '{section}.port' must be 0-65535")
    if not (config.store.url.startswith("sqlite:///") or config.store.url.startswith("postgres")):
        raise ConfigError(f"{src}: 'store.url' must start with sqlite:/// or postgresql://")
    if config.agi.deadline_ms == 0:
        raise ConfigError(f"{src}: 'agi.deadline_ms' must be at least 1")
    for i, proxy in enumerate(config.http.trusted_proxies):
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"{src}: 'http.trusted_proxies[{i}]': {proxy!r} is not an IP address or network"
                " like 10.0.0.0/8"
            ) from None
    region = config.phone.default_region
    seen_keys: set[str] = set()
    seen_numbers: dict[str, str] = {}

    def number(value: str, key: str) -> None:
        try:
            e164 = normalise(value, region)
        except InvalidNumber as exc:
            raise ConfigError(f"{src}: '{key}': {exc}") from None
        if e164 != value:
            raise ConfigError(f"{src}: '{key}': write numbers in E.164, e.g. {e164}")

    def unique(value: str, key: str) -> None:
        number(value, key)
        if value in seen_numbers:
            raise ConfigError(f"{src}: '{key}': {value} is already used by {seen_numbers[value]}")
        seen_numbers[value] = key

    def destination(value: str, key: str) -> None:
        if value and not _DIAL_STRING.fullmatch(value):
            raise ConfigError(
                f"{src}: '{key}': {value!r} is not a plain dial string like PJSIP/agent1 or "
                "Local/100@agents (letters, digits and / @ . _ - + : only)"
            )

    for i, site in enumerate(config.sites):
        at = f"sites[{i}]"
        destination(site.destination, f"{at}.destination")
        if not site.key or len(site.key) > 64 or not site.key.replace("-", "").isalnum():
            raise ConfigError(f"{src}: '{at}.key' must be 1-64 letters, digits or '-'")
        if site.key in seen_keys:
            raise ConfigError(f"{src}: '{at}.key': site '{site.key}' is defined twice")
        seen_keys.add(site.key)
        targets = set()
        for j, pool in enumerate(site.pools):
            pat = f"{at}.pools[{j}]"
            number(pool.target, f"{pat}.target")
            targets.add(pool.target)
            if not pool.numbers:
                raise ConfigError(f"{src}: '{pat}.numbers' must list at least one number")
            for k, n in enumerate(pool.numbers):
                unique(n, f"{pat}.numbers[{k}]")
            if pool.overflow:
                unique(pool.overflow, f"{pat}.overflow")
            destination(pool.destination, f"{pat}.destination")
            problem = timing_problem({k: getattr(pool, k) for k in TIMING_DEFAULTS})
            if problem:
                key, reason = problem
                raise ConfigError(f"{src}: '{pat}.{key}' {reason} (pool {site.key}:{pool.target})")
        for j, static in enumerate(site.static_numbers):
            unique(static.number, f"{at}.static_numbers[{j}].number")
            destination(static.destination, f"{at}.static_numbers[{j}].destination")
        statics = {s.number for s in site.static_numbers}
        for j, rule in enumerate(site.rules):
            rat = f"{at}.rules[{j}]"
            if rule.number not in statics:
                raise ConfigError(f"{src}: '{rat}.number' must be one of the site's static_numbers")
            number(rule.target, f"{rat}.target")
            if not rule.param and not rule.referrer_contains:
                raise ConfigError(f"{src}: '{rat}' needs 'param' or 'referrer_contains'")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
