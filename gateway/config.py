"""The gateway's one TOML config file, validated, with `CTGW_<SECTION>_<KEY>` overrides; the
settings it fills are in gateway/settings.py, named here too."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config_cluster import CLUSTER_SECRET_ENV, check_cluster
from gateway.config_error import ConfigError
from gateway.config_sites import SiteCheck, check_conversions, check_sites
from gateway.settings import (
    AgiSettings,
    AmiSettings,
    AsteriskSettings,
    CallsSettings,
    ClusterSettings,
    Config,
    CrmSettings,
    DispositionSettings,
    HttpSettings,
    LimitSettings,
    LogSettings,
    PhoneSettings,
    PoolSettings,
    RuleSettings,
    SiteSettings,
    StaticNumberSettings,
    StoreSettings,
)
from gateway.webhook_settings import check_webhooks
from numberpool.crm import rules_problem

__all__ = [
    "AgiSettings",
    "AmiSettings",
    "AsteriskSettings",
    "CallsSettings",
    "ClusterSettings",
    "Config",
    "ConfigError",
    "CrmSettings",
    "DispositionSettings",
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


_SCALAR_SECTIONS = (
    "http", "store", "agi", "ami", "asterisk", "log", "phone", "crm", "calls", "cluster",
)  # fmt: skip
# A dialplan context name Originate may be sent to (no comma, quote or line break).
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,79}")


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
        if not name.startswith("CTGW_") or name in _NOT_OVERRIDES:
            continue
        section, _, key = name[5:].lower().partition("_")
        if section not in _SCALAR_SECTIONS or not key:
            continue
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        data[section] = {**table, key: _EnvValue(name, value)}
    config: Config = _build(Config, data, source, "")
    # With click-to-call on, doctor checks that the AMI user holds the originate right.
    on = config.asterisk.click_to_call or config.calls.click_to_call
    asterisk = dataclasses.replace(config.asterisk, click_to_call=on)
    config = dataclasses.replace(config, source=source, asterisk=asterisk)
    _check_semantics(config)
    check_cluster(
        config.cluster,
        config.source,
        config.store.url,
        {"http.port": config.http.port, "agi.port": config.agi.port},
        os.environ if environ is None else environ,
    )
    return config


# Variables of the CTGW_ prefix that are not config keys: the PostgreSQL store reads its
# password itself (gateway/store/pg/database.py), and the peer link its shared secret
# (gateway/config_cluster.py), so neither is in a Config a log could show.
_NOT_OVERRIDES = frozenset({"CTGW_STORE_PASSWORD", CLUSTER_SECRET_ENV})


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
    _check_sections(config)
    check_sites(config)
    check_webhooks(config)
    check_conversions(config)
    if not _CONTEXT.fullmatch(config.calls.outbound_context):
        raise ConfigError(f"{config.source}: 'calls.outbound_context': letters, digits, - or _")
    check, ids = SiteCheck(config), [("calls", config.calls.outbound_caller_id)]
    ids += [(f"sites[{i}]", site.outbound_caller_id) for i, site in enumerate(config.sites)]
    for where, number in ids:
        if number:
            check.number(number, f"{where}.outbound_caller_id")


def _check_sections(config: Config) -> None:
    """The values of the scalar sections that their types alone do not rule out."""
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
    # postgresql:// and postgres:// open PostgreSQL (its password from CTGW_STORE_PASSWORD).
    if not (config.store.url.startswith("sqlite:///") or config.store.url.startswith("postgres")):
        raise ConfigError(
            f"{src}: 'store.url' must be sqlite:///PATH or postgresql://[USER@]HOST[:PORT]/DATABASE"
        )
    crm_problem = rules_problem(config.crm.rules().dispositions)
    if crm_problem:
        raise ConfigError(f"{src}: 'crm.{crm_problem[0]}' {crm_problem[1]}")
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
