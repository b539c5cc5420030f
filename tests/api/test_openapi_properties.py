"""Property-based: requests generated from /v1/openapi.json, sent to a running gateway, get no 5xx
and answers whose status, content type, headers and JSON body are as described (schemathesis)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import parse_config
from gateway.http.openapi import build_openapi
from gateway.http.swapjs import SWAP_SCRIPT
from gateway.metrics import Metrics
from gateway.store.keys import create_key
from gateway.store.staff import create_user, open_session
from gateway.telephony.call_ledger import CallLedger
from tests.api.conftest import ORIGIN, POOL, demo_config
from tests.api.test_crm_ledger import final, record_call, settle

# What is checked of every answer; the positive/negative data checks are left out on purpose:
# a parameter's schema gives its type, not every rule of the handler (a phone number's region,
# a site key that exists), and those answer 400 or 404 as described.
_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
_CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {"enabled": False, **{name: {"enabled": True} for name in _CHECKS}},
        "phases": {
            "examples": {"enabled": False},  # the description has no examples
            "coverage": {"enabled": True},  # boundary values of each parameter and field
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
# Left out: the event stream stays open until the client leaves, and logging out would end
# the staff session the other examples use.
SCHEMA = (
    schemathesis.openapi.from_dict(build_openapi("test"), config=_CONFIG)
    .exclude(path="/staff/agent/events")
    .exclude(path="/staff/logout")
)
# ~65 operations x 10 examples, twice, plus their boundary cases: 3,000 requests, about half a
# minute on 2 CPUs.
SETTINGS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@dataclass
class Gateway:
    """A gateway serving on 127.0.0.1, with a key, a staff session and stored records."""

    url: str
    headers: dict[str, str]
    # Path parameter name -> ids that exist, so examples also reach past the 404s.
    known: dict[str, list[str]] = field(default_factory=dict)


def _in_thread(loop: asyncio.AbstractEventLoop) -> threading.Thread:
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    return thread


async def _seed(app: web.Application, url: str) -> Gateway:
    """An API key, a staff admin's session, two calls (one missed: a contact and a task) and
    a visitor session."""
    db, now = app[DB], datetime.now(UTC)
    key = await create_key(db, "openapi", now)
    ledger = CallLedger(db, Metrics())
    await record_call(db, "m1", now)
    await ledger.call_updated(final("m1", "missed", now))
    await record_call(db, "a1", now + timedelta(minutes=1), caller="+12025550199")
    await ledger.call_updated(final("a1", "answered", now + timedelta(minutes=1), talk=9.0))
    await settle(db)
    user = await create_user(
        db, email="ann@example.com", name="Ann", role="admin", sites=(), password="x" * 16, at=now
    )
    token, staff = await open_session(db, user, now)
    async with aiohttp.ClientSession() as http:
        body = {"site": "demo", "url": f"{ORIGIN}/?gclid=abc"}
        async with http.post(f"{url}/v1/sessions", json=body) as resp:
            session_id = (await resp.json())["session_id"]
    contacts = await db.fetchall("SELECT contact_id FROM contacts ORDER BY contact_id")
    tasks = await db.fetchall("SELECT task_id FROM tasks ORDER BY task_id")
    return Gateway(
        url,
        {
            "Authorization": f"Bearer {key}",
            "Cookie": f"ctgw_staff={token}",
            "X-CSRF-Token": staff.csrf,
        },
        {
            "call_id": ["m1", "a1"],
            "contact_id": [str(r["contact_id"]) for r in contacts],
            "task_id": [str(r["task_id"]) for r in tasks],
            "session_id": [session_id],
            "key": ["demo"],
            "site": ["demo"],
            "pool_id": ["demo:+14155550100"],
            "number": POOL[-2:],
            "digest": [app[SWAP_SCRIPT].digest],
            "name": ["index.html", "app.js"],
        },
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The app served by aiohttp in a thread of its own (schemathesis sends blocking requests)."""
    tmp: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(parse_config(demo_config(tmp), source="test"))
    loop = asyncio.new_event_loop()
    thread = _in_thread(loop)
    runner = web.AppRunner(app)

    async def start() -> Gateway:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return await _seed(app, f"http://127.0.0.1:{port}")

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _known_ids(case: Any, data: st.DataObject, gateway: Gateway) -> None:
    """Half the time a path parameter names a record that exists, the Origin header an allowed
    one, a body field a usable value."""
    for name in list(case.path_parameters or {}):
        if name in gateway.known and data.draw(st.booleans(), label=f"known {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(gateway.known[name]))
    if case.headers and "Origin" in case.headers and data.draw(st.booleans(), label="origin"):
        case.headers["Origin"] = ORIGIN
    if not isinstance(case.body, dict):
        return
    for name, value in _USABLE.items():
        if name in case.body and data.draw(st.booleans(), label=f"usable {name}"):
            case.body[name] = value


_USABLE = {
    "site": "demo",
    "url": f"{ORIGIN}/?utm_source=openapi",
    "target": "+14155550100",
    "number": "+14155550177",
    "disposition": "call back",
}


@SCHEMA.parametrize()
@SETTINGS
def test_generated_requests_are_answered_as_described(case, gateway: Gateway) -> None:
    """Each generated request (boundary cases, then random ones) gets no 5xx, and a status,
    content type, headers and body as described."""
    case.call_and_validate(base_url=gateway.url, headers=gateway.headers, timeout=10)


@SCHEMA.parametrize()
@SCHEMA.given(data=st.data())
@SETTINGS
def test_requests_on_stored_records_are_answered_as_described(case, data, gateway: Gateway) -> None:
    """The same, with ids of records that exist: the answers past the 404s match too."""
    _known_ids(case, data, gateway)
    case.call_and_validate(base_url=gateway.url, headers=gateway.headers, timeout=10)
