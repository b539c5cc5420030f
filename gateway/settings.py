"""The gateway's settings, section by section, as the config file holds them (read and
checked by gateway/config.py); each field's `help` says what it is for."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gateway.config_cluster import ClusterSettings
from gateway.conversion_settings import ConversionSettings
from gateway.webhook_settings import WebhookEndpointSettings, WebhookSettings
from numberpool.crm import DEFAULT_DISPOSITIONS, CrmRules, Disposition

__all__ = [
    "AgiSettings",
    "AmiSettings",
    "AsteriskSettings",
    "CallsSettings",
    "ClusterSettings",
    "Config",
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
]

# A field with this default must be given in the file.
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
        default="sqlite:///var/ctgw.db",
        metadata={"help": "sqlite:///PATH, the one store this build supports"},
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
        default=False,
        metadata={
            "help": "the AMI user is meant to hold the originate right (ctgw doctor warns when"
            " it holds it and this is false); the gateway itself originates no calls"
        },
    )


@dataclass(frozen=True)
class CallsSettings:
    click_to_call: bool = field(
        default=False,
        metadata={
            "help": "agents may call a contact from its page or task: AMI Originate rings the"
            " agent's endpoint, then the contact through outbound_context (needs the AMI"
            " user's originate right)"
        },
    )
    outbound_context: str = field(
        default="ctgw-outbound",
        metadata={"help": "dialplan context that dials the contact's E.164 number out"},
    )
    outbound_caller_id: str = field(
        default="", metadata={"help": "E.164 caller id of outbound calls (a site's own wins)"}
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
    when_exhausted: str = field(
        default="reuse",
        metadata={
            "help": "with no rested number: 'reuse' leases the least risky cooling one,"
            " 'overflow' shows the overflow number"
        },
    )
    min_cooldown_seconds: int = field(
        default=0,
        metadata={"help": "rest a cooling number needs before reuse under pressure"},
    )
    dial_delay_seconds: int = field(
        default=0,
        metadata={"help": "a call this soon after a new lease goes to the old holder (0: off)"},
    )
    share_called_numbers: bool = field(
        default=True,
        metadata={
            "help": "lease a number whose live holder already called to a second visitor before"
            " a number whose silent last holder may still call (only with when_exhausted ="
            " 'reuse')"
        },
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
    timezone: str = field(
        default="UTC",
        metadata={"help": "IANA time zone the site's reports count days and hours in"},
    )
    outbound_caller_id: str = field(
        default="", metadata={"help": "E.164 caller id of this site's click-to-call calls"}
    )
    whisper: bool = field(
        default=False,
        metadata={
            "help": "before an agent is connected, Asterisk spells the call's source to the"
            " agent only while the caller hears ringing (docs/asterisk.md, Whisper)"
        },
    )
    webhooks: list[WebhookEndpointSettings] = field(
        default_factory=list, metadata={"help": "endpoints this site's events are POSTed to"}
    )
    conversions: ConversionSettings = field(
        default_factory=ConversionSettings, metadata={"help": "ad-platform conversions"}
    )


@dataclass(frozen=True)
class DispositionSettings:
    name: str = field(default=_REQUIRED, metadata={"help": "what the agent picks, e.g. booked"})
    status: str = field(
        default="",
        metadata={
            "help": "lead status it moves the contact to (new, contacted, qualified,"
            " customer, lost; empty: keeps it)"
        },
    )
    closes_tasks: bool = field(
        default=False, metadata={"help": "it closes the contact's open follow-up tasks"}
    )
    spam: bool = field(default=False, metadata={"help": "it marks the contact and the call spam"})


@dataclass(frozen=True)
class CrmSettings:
    contacted_talk_seconds: int = field(
        default=30, metadata={"help": "talk time that makes a new lead 'contacted'"}
    )
    followup_delay_minutes: int = field(
        default=60, metadata={"help": "a missed call's follow-up task is due after this"}
    )
    dispositions: list[DispositionSettings] = field(
        default_factory=lambda: [DispositionSettings(**vars(d)) for d in DEFAULT_DISPOSITIONS],
        metadata={"help": "what an agent may set after a call"},
    )

    def rules(self) -> CrmRules:
        """The CRM's rules as numberpool/crm.py applies them."""
        return CrmRules(
            float(self.contacted_talk_seconds),
            timedelta(minutes=self.followup_delay_minutes),
            tuple(Disposition(**vars(d)) for d in self.dispositions),
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
    crm: CrmSettings = field(default_factory=CrmSettings)
    calls: CallsSettings = field(default_factory=CallsSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    sites: list[SiteSettings] = field(default_factory=list)
    source: str = field(default="<defaults>", metadata={"internal": True})
