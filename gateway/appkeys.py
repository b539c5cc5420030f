"""Typed keys for the resources the app holds (no string keys, no module globals)."""

from __future__ import annotations

from aiohttp import web

from gateway.agi import AgiServer
from gateway.ami import AmiClient
from gateway.call_ledger import CallLedger
from gateway.config import Config
from gateway.db import Database
from gateway.metrics import Metrics
from gateway.sessions import SessionDesk
from numberpool.clock import Clock

__all__ = ["AGI", "AMI", "CLOCK", "CONFIG", "CORS_ORIGIN", "DB", "DESK", "LEDGER", "METRICS"]

CONFIG = web.AppKey("config", Config)
AGI = web.AppKey("agi", AgiServer)
AMI = web.AppKey("ami", AmiClient)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
DB = web.AppKey("db", Database)
DESK = web.AppKey("desk", SessionDesk)
LEDGER = web.AppKey("ledger", CallLedger)

# The origin a request was allowed from, so error answers carry the CORS header too.
CORS_ORIGIN = web.RequestKey("cors_origin", str)
