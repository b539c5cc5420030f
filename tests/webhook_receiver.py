"""A real local webhook receiver for the tests and the bench: an aiohttp server that answers
as told (500, a timeout, a connection closed mid-answer, a redirect, then 200) and keeps what
it accepted, checked by the Python recipe of docs/webhooks.md."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
SECRET = "test-secret-0123456789abcdef"


def doc_recipe(language: str) -> str:
    """The verification recipe in docs/webhooks.md, as written there."""
    text = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
    match = re.search(rf"```{language}\n(.*?)```", text, re.S)
    assert match is not None, f"no {language} recipe in docs/webhooks.md"
    return match.group(1)


def python_verify() -> Callable[[str, str, bytes], bool]:
    """The docs' Python recipe, run as it is."""
    space: dict[str, Any] = {}
    exec(compile(doc_recipe("python"), "docs/webhooks.md", "exec"), space)
    verify: Callable[[str, str, bytes], bool] = space["verify"]
    return verify


class Receiver:
    """Answers each POST with the next of `modes` (then 200 for good)."""

    def __init__(
        self, modes: list[str] | None = None, *, delay: float = 0.0, hang: float = 30.0
    ) -> None:
        self.hang = hang
        self.modes = list(modes or [])
        self.delay = delay
        self.accepted: list[dict[str, Any]] = []  # bodies answered 200, in the order answered
        self.keys: list[str] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []
        self.requests = 0
        self.redirects_followed = 0
        self.bad_signatures = 0
        self.verify = python_verify()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_route("*", "/elsewhere", self._elsewhere)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.redirects_followed += 1
        return web.Response(status=200)

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        mode = self.modes.pop(0) if self.modes else "ok"
        body = await request.read()
        if mode == "500":
            return web.Response(status=500, text="boom")
        if mode == "timeout":
            await asyncio.sleep(self.hang)
            return web.Response(status=200)
        if mode == "redirect":
            raise web.HTTPFound(f"http://127.0.0.1:{self.port}/elsewhere")
        if mode == "close":
            response = web.StreamResponse(status=200)
            response.content_length = 100
            await response.prepare(request)
            await response.write(b"0123456789")
            assert request.transport is not None
            request.transport.abort()
            return response
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.verify(SECRET, request.headers["Ctgw-Signature"], body):
            self.bad_signatures += 1
            return web.Response(status=400)
        event = json.loads(body)
        assert event["event_id"] == request.headers["Ctgw-Event-Id"]
        self.accepted.append(event)
        self.keys.append(event["event_id"])
        self.raw.append((dict(request.headers), body))
        return web.Response(status=204)
