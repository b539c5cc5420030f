"""Typed keys for the resources the app holds (no string keys, no module globals).

The resource classes are named for the type checker only: importing these keys loads none of
them, so an HTTP front process that reads CONFIG does not load the AMI, FastAGI or store code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.leasing.desk import SessionDesk
    from gateway.login_throttle import LoginThrottle
    from gateway.metrics import Metrics
    from gateway.store.database import Database
    from gateway.telephony.agi import AgiServer
    from gateway.telephony.ami import AmiClient
    from gateway.telephony.call_ledger import CallLedger
    from gateway.telephony.pop_hub import PopHub
    from numberpool.clock import Clock

__all__ = [
    "AGI",
    "AMI",
    "CLOCK",
    "CONFIG",
    "CORS_ORIGIN",
    "DB",
    "DESK",
    "LEDGER",
    "LOGIN_THROTTLE",
    "METRICS",
    "SCREEN_POPS",
]

CONFIG: web.AppKey[Config] = web.AppKey("config")
AGI: web.AppKey[AgiServer] = web.AppKey("agi")
AMI: web.AppKey[AmiClient] = web.AppKey("ami")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DB: web.AppKey[Database] = web.AppKey("db")
DESK: web.AppKey[SessionDesk] = web.AppKey("desk")
LEDGER: web.AppKey[CallLedger] = web.AppKey("ledger")
# Failed staff logins per e-mail and client address (gateway/http/staff.py creates it).
LOGIN_THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("login_throttle")

# The origin a request was allowed from, so error answers carry the CORS header too.
CORS_ORIGIN: web.RequestKey[str] = web.RequestKey("cors_origin")
# The hub the agent pages subscribe to (gateway/http/agent_console.py), fed from AMI.
SCREEN_POPS: web.AppKey[PopHub] = web.AppKey("screen_pops")
