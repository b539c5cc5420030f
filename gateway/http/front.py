"""An HTTP front process: answers POST /v1/sessions over the lease channel, passes the rest on.

Started by `ctgw serve` when `[http] workers` is set, as `python -m gateway.http.front` (see
`gateway/http/fronts.py`), so that the process loads only the code it runs. It accepts on
the listening socket the gateway process opened, reads and checks session requests itself (the
part of the work that needs no lease), and hands them to the gateway process, which owns the
leases and the store. Every other request (heartbeats, AMP, the admin API, swap.js, health,
metrics) goes unchanged to the gateway's own app on a Unix socket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway.appkeys import CONFIG
from gateway.config import Config, ConfigError, load_config
from gateway.http.errors import ApiError, error_middleware
from gateway.http.lease_channel import ChannelClosed, LeaseChannel
from gateway.http.serving import prepare_runner
from gateway.http.session_request import read_session_request
from gateway.logs import configure_logging

__all__ = ["create_front_app", "main", "run_front"]

log = structlog.get_logger()

CHANNEL = web.AppKey("lease_channel", LeaseChannel)
CORE = web.AppKey("core_client", aiohttp.ClientSession)

# Hop-by-hop headers (RFC 9110 7.6.1) stay on their own hop; aiohttp sets the framing again.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_CORE_DOWN = "the gateway's core process is not answering; try again shortly"


def create_front_app(config: Config, channel_path: Path, core_path: Path) -> web.Application:
    """The front's app: the session endpoint, and a pass-through for every other request."""
    app = web.Application(
        middlewares=[error_middleware], client_max_size=config.http.max_body_bytes
    )
    app[CONFIG] = config

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[CHANNEL] = await LeaseChannel.connect(channel_path)
        connector = aiohttp.UnixConnector(path=str(core_path), limit=0)
        app[CORE] = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # one client's cookies never reach another's
            # Pass the client's headers only: the client's Accept-Encoding decides about gzip.
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=300),
        )
        yield
        await app[CORE].close()
        await app[CHANNEL].close()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/v1/sessions", open_session)
    app.router.add_route("*", "/{tail:.*}", pass_on)
    return app


async def open_session(request: web.Request) -> web.Response:
    """Steps 1 and 2 of the session path (see gateway/leasing/desk.py), then the lease channel
    to the gateway process, where `answer_batch` (gateway/http/lease_owner.py) does the rest."""
    req = await read_session_request(request)
    try:
        reply = await request.app[CHANNEL].ask(req)
    except ChannelClosed:
        raise ApiError(503, "core_unavailable", _CORE_DOWN) from None
    return reply.response()


async def pass_on(request: web.Request) -> web.StreamResponse:
    """Send the request to the gateway's own app and stream its answer back unchanged."""
    headers = CIMultiDict(
        (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
    )
    # The gateway process sees its Unix socket, not the client: name who connected here, as a
    # proxy does (AMP numbers are limited per client address).
    forwarded = [*headers.popall("X-Forwarded-For", []), request.remote or "unknown"]
    headers["X-Forwarded-For"] = ", ".join(forwarded)
    body = await request.read() if request.can_read_body else None
    url = URL("http://ctgw-core" + request.raw_path, encoded=True)
    response: web.StreamResponse | None = None
    try:
        async with request.app[CORE].request(
            request.method, url, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
    except (TimeoutError, aiohttp.ClientConnectionError):
        if response is not None and response.prepared:
            raise  # half sent: the connection is dropped and the client sees it cut short
        raise ApiError(503, "core_unavailable", _CORE_DOWN) from None
    await response.write_eof()
    return response


async def run_front(config: Config, listen_fd: int, channel_path: Path, core_path: Path) -> int:
    """Serve on the inherited listening socket until SIGTERM/SIGINT or the core goes away."""
    structlog.contextvars.bind_contextvars(process="http_front")
    listener = socket.socket(fileno=listen_fd)
    app = create_front_app(config, channel_path, core_path)
    runner, stop = await prepare_runner(app)
    channel_closed = asyncio.ensure_future(app[CHANNEL].closed.wait())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        # The socket starts listening here, once the lease channel and the core client exist.
        await web.SockSite(runner, listener, backlog=1024).start()
        log.debug("http_front_started")
        await asyncio.wait({channel_closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (channel_closed, stopping):
            waiter.cancel()
        with contextlib.suppress(Exception):
            await runner.cleanup()  # finishes the requests in flight
    if not stop.is_set():
        log.error("http_front_lost_core")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m gateway.http.front --fd N --channel PATH --core PATH [--config PATH]`."""
    parser = argparse.ArgumentParser(prog="python -m gateway.http.front")
    parser.add_argument("--config", metavar="PATH", help="the gateway's TOML config")
    parser.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    parser.add_argument("--channel", required=True, help="the lease channel's Unix socket")
    parser.add_argument("--core", required=True, help="the gateway app's Unix socket")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:  # the gateway read the same file a moment ago: rare
        sys.stderr.write(f"ctgw front: error: {exc}\n")
        return 2
    configure_logging(config.log.level, config.log.format)
    try:
        return asyncio.run(run_front(config, args.fd, Path(args.channel), Path(args.core)))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
